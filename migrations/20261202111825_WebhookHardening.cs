using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <inheritdoc />
    public partial class WebhookHardening : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "last_batch_count",
                table: "agent_streams",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "last_batch_skipped",
                table: "agent_streams",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.CreateIndex(
                name: "ix_agent_sessions_previous_token_hash",
                table: "agent_sessions",
                column: "previous_token_hash");

            migrationBuilder.CreateIndex(
                name: "ix_agent_sessions_token_hash",
                table: "agent_sessions",
                column: "token_hash");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_agent_sessions_previous_token_hash",
                table: "agent_sessions");

            migrationBuilder.DropIndex(
                name: "ix_agent_sessions_token_hash",
                table: "agent_sessions");

            migrationBuilder.DropColumn(
                name: "last_batch_count",
                table: "agent_streams");

            migrationBuilder.DropColumn(
                name: "last_batch_skipped",
                table: "agent_streams");
        }
    }
}
