using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class InitialSchema : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "agent_events",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityAlwaysColumn),
                    event_id = table.Column<Guid>(type: "uuid", nullable: false),
                    agent_id = table.Column<int>(type: "integer", nullable: false),
                    sequence = table.Column<long>(type: "bigint", nullable: false),
                    event_type = table.Column<string>(type: "text", nullable: false),
                    content = table.Column<string>(type: "jsonb", nullable: false),
                    event_gen_time = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    received_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    published_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_agent_events", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "agent_sessions",
                columns: table => new
                {
                    agent_id = table.Column<int>(type: "integer", nullable: false),
                    state = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    guid = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: true),
                    token_hash = table.Column<byte[]>(type: "bytea", nullable: true),
                    previous_token_hash = table.Column<byte[]>(type: "bytea", nullable: true),
                    previous_token_valid_until = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    gateway_result = table.Column<string>(type: "jsonb", nullable: true),
                    sign_in_started_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    signed_in_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    signed_out_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    last_error = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_agent_sessions", x => x.agent_id);
                });

            migrationBuilder.CreateTable(
                name: "agent_streams",
                columns: table => new
                {
                    agent_id = table.Column<int>(type: "integer", nullable: false),
                    last_sequence = table.Column<long>(type: "bigint", nullable: false),
                    last_batch_hash = table.Column<byte[]>(type: "bytea", nullable: true),
                    last_batch_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_agent_streams", x => x.agent_id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_agent_events_agent_id_sequence",
                table: "agent_events",
                columns: new[] { "agent_id", "sequence" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_agent_events_event_id",
                table: "agent_events",
                column: "event_id",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_agent_events_unpublished",
                table: "agent_events",
                column: "id",
                filter: "published_at IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "agent_events");

            migrationBuilder.DropTable(
                name: "agent_sessions");

            migrationBuilder.DropTable(
                name: "agent_streams");
        }
    }
}
