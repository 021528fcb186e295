using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class OutboxHotUpdates : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_agent_streams_unpublished",
                table: "agent_streams");

            migrationBuilder.AlterTable(
                name: "agent_streams")
                .Annotation("Npgsql:StorageParameter:fillfactor", 50);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterTable(
                name: "agent_streams")
                .OldAnnotation("Npgsql:StorageParameter:fillfactor", 50);

            migrationBuilder.CreateIndex(
                name: "ix_agent_streams_unpublished",
                table: "agent_streams",
                column: "agent_id",
                filter: "last_sequence > published_sequence");
        }
    }
}
