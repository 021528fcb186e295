using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class AppendOnlyEventKey : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // One index per stored event instead of three: nothing was read through the identity key or the unique index on event_id
            // (event ids are version-7 UUIDs, unique as made). The existing unique index on (agent_id, sequence) becomes
            // the primary key as it is: no index is rebuilt, whatever the table holds.
            migrationBuilder.DropPrimaryKey(
                name: "PK_agent_events",
                table: "agent_events");

            migrationBuilder.DropIndex(
                name: "IX_agent_events_event_id",
                table: "agent_events");

            migrationBuilder.DropColumn(
                name: "id",
                table: "agent_events");

            migrationBuilder.Sql("""
                ALTER TABLE agent_events ADD CONSTRAINT "PK_agent_events" PRIMARY KEY USING INDEX "IX_agent_events_agent_id_sequence";
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropPrimaryKey(
                name: "PK_agent_events",
                table: "agent_events");

            migrationBuilder.AddColumn<long>(
                name: "id",
                table: "agent_events",
                type: "bigint",
                nullable: false,
                defaultValue: 0L)
                .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityAlwaysColumn);

            migrationBuilder.AddPrimaryKey(
                name: "PK_agent_events",
                table: "agent_events",
                column: "id");

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
        }
    }
}
