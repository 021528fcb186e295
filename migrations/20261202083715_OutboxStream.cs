using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class OutboxStream : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "publish_error",
                table: "agent_streams",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "published_sequence",
                table: "agent_streams",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            // Publishing progress moves from each event row (published_at) to the agent's stream row: everything before an
            // agent's first unpublished event counts as published (the former dispatcher stopped an agent at its first
            // failure), so what was unpublished is published after the upgrade and nothing is lost. Read through the
            // former partial index, so this takes as long as the backlog, not the table. The event table is not updated.
            migrationBuilder.Sql("UPDATE agent_streams SET published_sequence = last_sequence;");
            migrationBuilder.Sql("""
                UPDATE agent_streams s SET published_sequence = u.first_unpublished - 1
                FROM (SELECT agent_id, min(sequence) AS first_unpublished FROM agent_events WHERE published_at IS NULL GROUP BY agent_id) u
                WHERE s.agent_id = u.agent_id;
                """);

            migrationBuilder.DropIndex(
                name: "ix_agent_events_unpublished",
                table: "agent_events");

            migrationBuilder.DropColumn(
                name: "published_at",
                table: "agent_events");

            migrationBuilder.CreateTable(
                name: "outbox_instances",
                columns: table => new
                {
                    instance_id = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    expires_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_outbox_instances", x => x.instance_id);
                });

            migrationBuilder.CreateTable(
                name: "outbox_partitions",
                columns: table => new
                {
                    partition_id = table.Column<int>(type: "integer", nullable: false),
                    owner_instance = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    epoch = table.Column<long>(type: "bigint", nullable: false),
                    lease_expires_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_outbox_partitions", x => x.partition_id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_agent_streams_unpublished",
                table: "agent_streams",
                column: "agent_id",
                filter: "last_sequence > published_sequence");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "outbox_instances");

            migrationBuilder.DropTable(
                name: "outbox_partitions");

            migrationBuilder.DropIndex(
                name: "ix_agent_streams_unpublished",
                table: "agent_streams");

            migrationBuilder.DropColumn(
                name: "publish_error",
                table: "agent_streams");

            migrationBuilder.DropColumn(
                name: "published_sequence",
                table: "agent_streams");

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "published_at",
                table: "agent_events",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_agent_events_unpublished",
                table: "agent_events",
                column: "id",
                filter: "published_at IS NULL");
        }
    }
}
