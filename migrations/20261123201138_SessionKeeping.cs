using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class SessionKeeping : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "gateway_cookies",
                table: "agent_sessions",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "last_guid_change_at",
                table: "agent_sessions",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "last_heartbeat_at",
                table: "agent_sessions",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "last_token_rotation_at",
                table: "agent_sessions",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "lease_expires_at",
                table: "agent_sessions",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "next_sign_in_at",
                table: "agent_sessions",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "owner_instance",
                table: "agent_sessions",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "sign_in_failures",
                table: "agent_sessions",
                type: "integer",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "gateway_cookies",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "last_guid_change_at",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "last_heartbeat_at",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "last_token_rotation_at",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "lease_expires_at",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "next_sign_in_at",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "owner_instance",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "sign_in_failures",
                table: "agent_sessions");
        }
    }
}
