CREATE TABLE IF NOT EXISTS "__EFMigrationsHistory" (
    "MigrationId" character varying(150) NOT NULL,
    "ProductVersion" character varying(32) NOT NULL,
    CONSTRAINT "PK___EFMigrationsHistory" PRIMARY KEY ("MigrationId")
);

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    CREATE TABLE agent_events (
        id bigint GENERATED ALWAYS AS IDENTITY,
        event_id uuid NOT NULL,
        agent_id integer NOT NULL,
        sequence bigint NOT NULL,
        event_type text NOT NULL,
        content jsonb NOT NULL,
        event_gen_time timestamp with time zone,
        received_at timestamp with time zone NOT NULL,
        published_at timestamp with time zone,
        CONSTRAINT "PK_agent_events" PRIMARY KEY (id)
    );
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    CREATE TABLE agent_sessions (
        agent_id integer NOT NULL,
        state character varying(16) NOT NULL,
        guid character varying(256),
        token_hash bytea,
        previous_token_hash bytea,
        previous_token_valid_until timestamp with time zone,
        gateway_result jsonb,
        sign_in_started_at timestamp with time zone,
        signed_in_at timestamp with time zone,
        signed_out_at timestamp with time zone,
        updated_at timestamp with time zone NOT NULL,
        last_error text,
        CONSTRAINT "PK_agent_sessions" PRIMARY KEY (agent_id)
    );
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    CREATE TABLE agent_streams (
        agent_id integer NOT NULL,
        last_sequence bigint NOT NULL,
        last_batch_hash bytea,
        last_batch_at timestamp with time zone,
        CONSTRAINT "PK_agent_streams" PRIMARY KEY (agent_id)
    );
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    CREATE UNIQUE INDEX "IX_agent_events_agent_id_sequence" ON agent_events (agent_id, sequence);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    CREATE UNIQUE INDEX "IX_agent_events_event_id" ON agent_events (event_id);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    CREATE INDEX ix_agent_events_unpublished ON agent_events (id) WHERE published_at IS NULL;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123200034_InitialSchema') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261123200034_InitialSchema', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD gateway_cookies text;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD last_guid_change_at timestamp with time zone;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD last_heartbeat_at timestamp with time zone;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD last_token_rotation_at timestamp with time zone;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD lease_expires_at timestamp with time zone;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD next_sign_in_at timestamp with time zone;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD owner_instance character varying(200);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    ALTER TABLE agent_sessions ADD sign_in_failures integer NOT NULL DEFAULT 0;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261123201138_SessionKeeping') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261123201138_SessionKeeping', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202055623_SessionsAtScale') THEN
    ALTER TABLE agent_sessions ADD token_seen_at timestamp with time zone;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202055623_SessionsAtScale') THEN
    ALTER TABLE agent_sessions ADD version integer NOT NULL DEFAULT 0;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202055623_SessionsAtScale') THEN
    CREATE TABLE keeper_instances (
        instance_id character varying(200) NOT NULL,
        expires_at timestamp with time zone NOT NULL,
        CONSTRAINT "PK_keeper_instances" PRIMARY KEY (instance_id)
    );
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202055623_SessionsAtScale') THEN
    CREATE INDEX ix_agent_sessions_owner_instance ON agent_sessions (owner_instance);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202055623_SessionsAtScale') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261202055623_SessionsAtScale', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    ALTER TABLE agent_streams ADD publish_error text;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    ALTER TABLE agent_streams ADD published_sequence bigint NOT NULL DEFAULT 0;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    UPDATE agent_streams SET published_sequence = last_sequence;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    UPDATE agent_streams s SET published_sequence = u.first_unpublished - 1
    FROM (SELECT agent_id, min(sequence) AS first_unpublished FROM agent_events WHERE published_at IS NULL GROUP BY agent_id) u
    WHERE s.agent_id = u.agent_id;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    DROP INDEX ix_agent_events_unpublished;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    ALTER TABLE agent_events DROP COLUMN published_at;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    CREATE TABLE outbox_instances (
        instance_id character varying(200) NOT NULL,
        expires_at timestamp with time zone NOT NULL,
        CONSTRAINT "PK_outbox_instances" PRIMARY KEY (instance_id)
    );
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    CREATE TABLE outbox_partitions (
        partition_id integer NOT NULL,
        owner_instance character varying(200),
        epoch bigint NOT NULL,
        lease_expires_at timestamp with time zone,
        CONSTRAINT "PK_outbox_partitions" PRIMARY KEY (partition_id)
    );
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    CREATE INDEX ix_agent_streams_unpublished ON agent_streams (agent_id) WHERE last_sequence > published_sequence;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202083715_OutboxStream') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261202083715_OutboxStream', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202111825_WebhookHardening') THEN
    ALTER TABLE agent_streams ADD last_batch_count integer;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202111825_WebhookHardening') THEN
    ALTER TABLE agent_streams ADD last_batch_skipped integer NOT NULL DEFAULT 0;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202111825_WebhookHardening') THEN
    CREATE INDEX ix_agent_sessions_previous_token_hash ON agent_sessions (previous_token_hash);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202111825_WebhookHardening') THEN
    CREATE INDEX ix_agent_sessions_token_hash ON agent_sessions (token_hash);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261202111825_WebhookHardening') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261202111825_WebhookHardening', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203071134_OutboxHotUpdates') THEN
    DROP INDEX ix_agent_streams_unpublished;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203071134_OutboxHotUpdates') THEN
    ALTER TABLE agent_streams SET (fillfactor=50);
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203071134_OutboxHotUpdates') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261203071134_OutboxHotUpdates', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203124617_AppendOnlyEventKey') THEN
    ALTER TABLE agent_events DROP CONSTRAINT "PK_agent_events";
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203124617_AppendOnlyEventKey') THEN
    DROP INDEX "IX_agent_events_event_id";
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203124617_AppendOnlyEventKey') THEN
    ALTER TABLE agent_events DROP COLUMN id;
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203124617_AppendOnlyEventKey') THEN
    ALTER TABLE agent_events ADD CONSTRAINT "PK_agent_events" PRIMARY KEY USING INDEX "IX_agent_events_agent_id_sequence";
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203124617_AppendOnlyEventKey') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261203124617_AppendOnlyEventKey', '10.0.15');
    END IF;
END $EF$;
COMMIT;

START TRANSACTION;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203221500_SessionTokenChanges') THEN
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
    END IF;
END $EF$;

DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM "__EFMigrationsHistory" WHERE "MigrationId" = '20261203221500_SessionTokenChanges') THEN
    INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
    VALUES ('20261203221500_SessionTokenChanges', '10.0.15');
    END IF;
END $EF$;
COMMIT;

