using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace CallbackHub.Migrations
{
    /// <summary>
    /// Every change of a session's tokens is marked with the (64-bit) id of the transaction that made it, so that each instance
    /// reads only the sessions whose tokens changed since it last looked (<c>Agents/TokenChangeFeed.cs</c>), instead of
    /// reading every agent's tokens again every <c>Callbacks__SessionCacheTtl</c>. A trigger sets the mark, so a change
    /// made by hand (a DBA clearing a token) is seen as well; deleting a row, which no instance would notice, is refused (with
    /// a hint to clear the tokens instead). It also counts the changes of each row's tokens
    /// (<c>tokens_version</c>; rows of the same agent change one at a time), so that of two reads of a session the newer is
    /// known. The columns are not in the EF Core model: only <c>SessionTokens</c> and the feed read them.
    /// </summary>
    public partial class SessionTokenChanges : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                ALTER TABLE agent_sessions ADD COLUMN tokens_changed_xid bigint NOT NULL DEFAULT 0,
                                           ADD COLUMN tokens_version bigint NOT NULL DEFAULT 1;
                CREATE INDEX ix_agent_sessions_tokens_changed_xid ON agent_sessions (tokens_changed_xid);
                CREATE FUNCTION callbackhub_mark_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
                BEGIN
                    NEW.tokens_changed_xid := pg_current_xact_id()::text::bigint;
                    IF TG_OP = 'UPDATE' THEN
                        NEW.tokens_version := OLD.tokens_version + 1;
                    END IF;
                    RETURN NEW;
                END
                $fn$;
                CREATE TRIGGER agent_sessions_tokens_changed
                    BEFORE INSERT OR UPDATE OF token_hash, token_seen_at, previous_token_hash, previous_token_valid_until ON agent_sessions
                    FOR EACH ROW EXECUTE FUNCTION callbackhub_mark_tokens_changed();
                CREATE FUNCTION callbackhub_refuse_session_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$
                BEGIN
                    RAISE EXCEPTION 'agent_sessions rows are not deleted: CallbackHub instances follow changes of a session''s tokens, not deletions, and would go on accepting its tokens'
                        USING HINT = 'Clear the tokens instead: UPDATE agent_sessions SET token_hash = NULL, token_seen_at = NULL, previous_token_hash = NULL, previous_token_valid_until = NULL WHERE agent_id = ...';
                END
                $fn$;
                CREATE TRIGGER agent_sessions_not_deleted BEFORE DELETE ON agent_sessions
                    FOR EACH ROW EXECUTE FUNCTION callbackhub_refuse_session_delete();
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER agent_sessions_not_deleted ON agent_sessions;
                DROP FUNCTION callbackhub_refuse_session_delete();
                DROP TRIGGER agent_sessions_tokens_changed ON agent_sessions;
                DROP FUNCTION callbackhub_mark_tokens_changed();
                ALTER TABLE agent_sessions DROP COLUMN tokens_changed_xid, DROP COLUMN tokens_version;
                """);
        }
    }
}
