using Microsoft.EntityFrameworkCore;

namespace CallbackHub.Storage;

internal sealed class CallbackHubDbContext(DbContextOptions<CallbackHubDbContext> options) : DbContext(options)
{
    public DbSet<AgentEvent> AgentEvents => Set<AgentEvent>();
    public DbSet<AgentStream> AgentStreams => Set<AgentStream>();
    public DbSet<AgentSession> AgentSessions => Set<AgentSession>();
    public DbSet<Outbox.OutboxPartition> OutboxPartitions => Set<Outbox.OutboxPartition>();

    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<AgentEvent>(e =>
        {
            e.ToTable("agent_events");
            // An event is its agent's event number n: the outbox reads each agent's events after its published sequence through this key.
            // It is the only index: every index is one more B-tree insert per stored event (an identity key and a unique index
            // on event_id were two, and nothing read by them; event ids are unique by construction, version-7 UUIDs).
            e.HasKey(x => new { x.AgentId, x.Sequence });
            e.Property(x => x.EventId).HasColumnName("event_id");
            e.Property(x => x.AgentId).HasColumnName("agent_id");
            e.Property(x => x.Sequence).HasColumnName("sequence");
            e.Property(x => x.EventType).HasColumnName("event_type");
            e.Property(x => x.Content).HasColumnName("content").HasColumnType("jsonb");
            e.Property(x => x.EventGenTime).HasColumnName("event_gen_time");
            e.Property(x => x.ReceivedAt).HasColumnName("received_at");
        });

        model.Entity<AgentStream>(e =>
        {
            e.ToTable("agent_streams");
            e.HasKey(x => x.AgentId);
            e.Property(x => x.AgentId).HasColumnName("agent_id").ValueGeneratedNever();
            e.Property(x => x.LastSequence).HasColumnName("last_sequence");
            e.Property(x => x.LastBatchHash).HasColumnName("last_batch_hash");
            e.Property(x => x.LastBatchAt).HasColumnName("last_batch_at");
            e.Property(x => x.LastBatchCount).HasColumnName("last_batch_count");
            e.Property(x => x.LastBatchSkipped).HasColumnName("last_batch_skipped");
            e.Property(x => x.PublishedSequence).HasColumnName("published_sequence");
            e.Property(x => x.PublishError).HasColumnName("publish_error");
            // Every push and every progress write updates its agent's row: with no index on a column they change (an index on
            // "unpublished" was one, through its predicate) and room left on each page, those updates are HOT (PostgreSQL
            // writes no index entries for them). The publisher reads rows by agent (the primary key) or, rarely, all of them.
            e.HasStorageParameter("fillfactor", 50);
        });

        model.Entity<AgentSession>(e =>
        {
            e.ToTable("agent_sessions");
            e.HasKey(x => x.AgentId);
            e.Property(x => x.AgentId).HasColumnName("agent_id").ValueGeneratedNever();
            e.Property(x => x.State).HasColumnName("state").HasConversion(
                v => AgentSessionStates.ToText(v), v => AgentSessionStates.Parse(v)).HasMaxLength(16);
            e.Property(x => x.Guid).HasColumnName("guid").HasMaxLength(256);
            e.Property(x => x.TokenHash).HasColumnName("token_hash");
            e.Property(x => x.PreviousTokenHash).HasColumnName("previous_token_hash");
            e.Property(x => x.PreviousTokenValidUntil).HasColumnName("previous_token_valid_until");
            e.Property(x => x.TokenSeenAt).HasColumnName("token_seen_at");
            e.Property(x => x.Version).HasColumnName("version").IsConcurrencyToken();
            e.Property(x => x.GatewayResult).HasColumnName("gateway_result").HasColumnType("jsonb");
            e.Property(x => x.GatewayCookies).HasColumnName("gateway_cookies");
            e.Property(x => x.OwnerInstance).HasColumnName("owner_instance").HasMaxLength(200);
            e.Property(x => x.LeaseExpiresAt).HasColumnName("lease_expires_at");
            e.Property(x => x.LastHeartbeatAt).HasColumnName("last_heartbeat_at");
            e.Property(x => x.LastGuidChangeAt).HasColumnName("last_guid_change_at");
            e.Property(x => x.LastTokenRotationAt).HasColumnName("last_token_rotation_at");
            e.Property(x => x.NextSignInAt).HasColumnName("next_sign_in_at");
            e.Property(x => x.SignInFailures).HasColumnName("sign_in_failures");
            e.Property(x => x.SignInStartedAt).HasColumnName("sign_in_started_at");
            e.Property(x => x.SignedInAt).HasColumnName("signed_in_at");
            e.Property(x => x.SignedOutAt).HasColumnName("signed_out_at");
            e.Property(x => x.UpdatedAt).HasColumnName("updated_at");
            e.Property(x => x.LastError).HasColumnName("last_error");
            // The keeper's questions: which sessions does this instance own, which are free.
            e.HasIndex(x => x.OwnerInstance).HasDatabaseName("ix_agent_sessions_owner_instance");
            // A push is authenticated by its token before its body is read: the token's hash finds the session.
            e.HasIndex(x => x.TokenHash).HasDatabaseName("ix_agent_sessions_token_hash");
            e.HasIndex(x => x.PreviousTokenHash).HasDatabaseName("ix_agent_sessions_previous_token_hash");
        });

        model.Entity<KeeperInstance>(e =>
        {
            e.ToTable("keeper_instances");
            e.HasKey(x => x.InstanceId);
            e.Property(x => x.InstanceId).HasColumnName("instance_id").HasMaxLength(200);
            e.Property(x => x.ExpiresAt).HasColumnName("expires_at");
        });

        model.Entity<Outbox.OutboxPartition>(e =>
        {
            e.ToTable("outbox_partitions");
            e.HasKey(x => x.PartitionId);
            e.Property(x => x.PartitionId).HasColumnName("partition_id").ValueGeneratedNever();
            e.Property(x => x.OwnerInstance).HasColumnName("owner_instance").HasMaxLength(200);
            e.Property(x => x.Epoch).HasColumnName("epoch");
            e.Property(x => x.LeaseExpiresAt).HasColumnName("lease_expires_at");
        });

        model.Entity<Outbox.OutboxInstance>(e =>
        {
            e.ToTable("outbox_instances");
            e.HasKey(x => x.InstanceId);
            e.Property(x => x.InstanceId).HasColumnName("instance_id").HasMaxLength(200);
            e.Property(x => x.ExpiresAt).HasColumnName("expires_at");
        });
    }
}
