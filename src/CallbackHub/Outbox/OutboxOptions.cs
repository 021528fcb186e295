namespace CallbackHub.Outbox;

/// <summary>Every setting of the outbox, from the push's commit to the broker's confirm and the health it reports.</summary>
internal sealed class OutboxOptions
{
    public const string Section = "Outbox";

    /// <summary>
    /// Agents hash into this many partitions (agent id mod P); each is published by one instance at a time. Read from the
    /// database once the first instance created them: changing it needs every instance stopped first.
    /// </summary>
    public int Partitions { get; set; } = 128;

    /// <summary>How long an instance owns a partition without renewing; another takes it over after that, on the database's clock.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often leases are renewed and partitions balanced between the live instances.</summary>
    public TimeSpan LeaseRenewInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Messages sent to RabbitMQ and not yet confirmed, at most, per instance.</summary>
    public int MaxInFlight { get; set; } = 1024;

    /// <summary>
    /// Events committed here that may wait in memory while the confirm window is full before new pushes wait too (see
    /// <see cref="IngestWaitWhenBehind"/>). Pushes let in after their longest wait may take the queue to 4× this; events
    /// beyond that are read back from PostgreSQL once there is room.
    /// </summary>
    public int MaxQueued { get; set; } = 2048;

    /// <summary>
    /// Longest time a push waits before it is stored while this instance's publisher has <see cref="MaxQueued"/> events
    /// waiting for the broker; then it is stored regardless. 0 turns the wait off.
    /// </summary>
    public TimeSpan IngestWaitWhenBehind { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Events read per agent and round; a long backlog of one agent does not hold back the others.</summary>
    public int MaxEventsPerAgent { get; set; } = 256;

    /// <summary>RabbitMQ channels the publisher spreads agents over; one agent always uses the same one.</summary>
    public int Channels { get; set; } = 2;

    /// <summary>
    /// Messages written to the broker while a send is under way go out together in the next one, instead of one system call
    /// per message (see <see cref="CoalescingSocket"/>). Off: RabbitMQ.Client's own socket.
    /// </summary>
    public bool CoalesceWrites { get; set; } = true;

    /// <summary>
    /// Safety-net poll: every agent of the held partitions is read at least this often, busy or idle. Commits wake the
    /// publisher at once (in-process, or by a coalesced NOTIFY from another instance naming the agents).
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest gap between NOTIFYs this instance sends for commits another instance publishes; commits in between share one.</summary>
    public TimeSpan WakeupCoalesce { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Longest wait for a broker confirm. Past it the channel is closed and the agent republished from its first unconfirmed
    /// event; the wait doubles after each such timeout (up to 8×), so a slow broker does not collect a copy per round.
    /// </summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest pause before an agent (or the connection) is tried again after failures.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Failed attempts after which an agent's first unpublished event counts as stuck (health, metrics, log).</summary>
    public int StuckAfterFailures { get; set; } = 5;

    /// <summary>How long a shutting-down instance keeps publishing what its partitions still hold.</summary>
    public TimeSpan ShutdownFlushTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Messages no queue is bound to are put in the durable queue <see cref="UnroutedQueue"/> (published mandatory; what the
    /// broker returns is sent there). Off: they are dropped by the broker, as RabbitMQ does by default.
    /// </summary>
    public bool KeepUnrouted { get; set; } = true;

    public string UnroutedQueue { get; set; } = "callbackhub.unrouted";

    /// <summary>Pushes committed together at most (concurrent pushes wait for one commit, not one each).</summary>
    public int MaxPushesPerCommit { get; set; } = 64;

    /// <summary>Commits running at once; each takes one database connection.</summary>
    public int CommitWriters { get; set; } = 4;

    /// <summary>
    /// Longest wait of a group's statement for a lock: an agent's stream row while another transaction holds it (in
    /// practice one whose instance froze or lost its network mid-commit, until the stalled-transaction check ends it), or
    /// the table's (a migration, DDL). Past it the group's pushes are committed one by one, each waiting at most 250 ms:
    /// the blocked ones are answered 503 (the gateway sends them again), the others stored. 0: no limit (whatever the
    /// database role's default).
    /// </summary>
    public TimeSpan AppendLockTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The outbox counts as stalled (not ready) when its oldest unpublished event is older than this.</summary>
    public TimeSpan StalledAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the backlog, partitions and session counts are read from PostgreSQL for metrics and health.</summary>
    public TimeSpan StatusRefresh { get; set; } = TimeSpan.FromSeconds(5);

    public static IEnumerable<string> Validate(OutboxOptions o)
    {
        if (o.Partitions is < 1 or > 4096)
        {
            yield return "Outbox__Partitions must be between 1 and 4096.";
        }

        if (o.LeaseRenewInterval <= TimeSpan.Zero || o.LeaseDuration < 2 * o.LeaseRenewInterval + TimeSpan.FromSeconds(1))
        {
            yield return "Outbox__LeaseRenewInterval must be positive, and Outbox__LeaseDuration at least twice as long plus 1 s.";
        }

        if (o.MaxInFlight is < 1 or > 1_000_000)
        {
            yield return "Outbox__MaxInFlight must be between 1 and 1000000.";
        }

        if (o.MaxQueued is < 1 or > 1_000_000)
        {
            yield return "Outbox__MaxQueued must be between 1 and 1000000.";
        }

        if (o.IngestWaitWhenBehind < TimeSpan.Zero || o.IngestWaitWhenBehind > TimeSpan.FromSeconds(30))
        {
            yield return "Outbox__IngestWaitWhenBehind must be between 0 and 00:00:30.";
        }

        if (o.MaxEventsPerAgent is < 1 or > 100_000)
        {
            yield return "Outbox__MaxEventsPerAgent must be between 1 and 100000.";
        }

        if (o.Channels is < 1 or > 64)
        {
            yield return "Outbox__Channels must be between 1 and 64.";
        }

        if (o.PollInterval <= TimeSpan.Zero || o.PublishTimeout <= TimeSpan.Zero || o.MaxRetryDelay <= TimeSpan.Zero || o.ShutdownFlushTimeout < TimeSpan.Zero)
        {
            yield return "Outbox__PollInterval, Outbox__PublishTimeout and Outbox__MaxRetryDelay must be positive, Outbox__ShutdownFlushTimeout not negative.";
        }

        if (o.WakeupCoalesce < TimeSpan.Zero || o.WakeupCoalesce > TimeSpan.FromSeconds(1))
        {
            yield return "Outbox__WakeupCoalesce must be between 0 and 00:00:01.";
        }

        if (o.StuckAfterFailures < 1)
        {
            yield return "Outbox__StuckAfterFailures must be at least 1.";
        }

        if (o.KeepUnrouted && (string.IsNullOrWhiteSpace(o.UnroutedQueue) || System.Text.Encoding.UTF8.GetByteCount(o.UnroutedQueue) > 255))
        {
            yield return "Outbox__UnroutedQueue must be a queue name of 1 to 255 bytes.";
        }

        if (o.MaxPushesPerCommit is < 1 or > 1000)
        {
            yield return "Outbox__MaxPushesPerCommit must be between 1 and 1000.";
        }

        if (o.CommitWriters is < 1 or > 64)
        {
            yield return "Outbox__CommitWriters must be between 1 and 64.";
        }

        if (o.AppendLockTimeout != TimeSpan.Zero && (o.AppendLockTimeout < TimeSpan.FromMilliseconds(100) || o.AppendLockTimeout > TimeSpan.FromMinutes(1)))
        {
            yield return "Outbox__AppendLockTimeout must be 0 (no limit) or between 00:00:00.1 and 00:01:00.";
        }

        if (o.StatusRefresh <= TimeSpan.Zero)
        {
            yield return "Outbox__StatusRefresh must be positive.";
        }

        if (o.StalledAfter <= o.StatusRefresh)
        {
            yield return "Outbox__StalledAfter must be longer than Outbox__StatusRefresh.";
        }
    }
}
