using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class SessionsAtScale : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "token_seen_at",
                table: "agent_sessions",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "version",
                table: "agent_sessions",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.CreateTable(
                name: "keeper_instances",
                columns: table => new
                {
                    instance_id = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    expires_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_keeper_instances", x => x.instance_id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_agent_sessions_owner_instance",
                table: "agent_sessions",
                column: "owner_instance");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "keeper_instances");

            migrationBuilder.DropIndex(
                name: "ix_agent_sessions_owner_instance",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "token_seen_at",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "version",
                table: "agent_sessions");
        }
    }
}
