using System.Diagnostics.Metrics;
using CallbackHub.Hosting;
using CallbackHub.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Outbox;

/// <summary>What the outbox and the sessions looked like at <see cref="ReadAt"/>, cluster-wide.</summary>
/// <param name="OldestUnpublishedAt">The oldest first-unpublished event of an agent that is not stuck.</param>
/// <param name="Stuck">Agents whose next event cannot be published, with why (at most 10).</param>
internal sealed record OutboxSnapshot(
    long Backlog,
    DateTimeOffset? OldestUnpublishedAt,
    long StuckAgents,
    IReadOnlyList<string> Stuck,
    IReadOnlyList<PartitionStatus> Partitions,
    IReadOnlyDictionary<string, long> SessionsByState,
    DateTimeOffset ReadAt);

internal sealed record PartitionStatus(int Id, string? Owner, long Lag);

/// <summary>
/// Reads the outbox backlog, the partitions and the session counts every <see cref="OutboxOptions.StatusRefresh"/> and
/// exposes them as gauges and to the readiness check. Sampling in the background keeps scrapes and probes from querying
/// PostgreSQL themselves (many replicas × many scrapers), and gauge callbacks are synchronous anyway.
/// </summary>
internal sealed partial class OutboxMonitor : BackgroundService
{
    // Three sequential scans of agent_streams every StatusRefresh (a few milliseconds at 50,000 agents): the table has no
    // index on "unpublished", so that its updates stay HOT.
    private const string Query = """
        SELECT coalesce(sum(s.last_sequence - s.published_sequence), 0)::bigint,
               (SELECT min(e.received_at) FROM agent_streams u
                JOIN agent_events e ON e.agent_id = u.agent_id AND e.sequence = u.published_sequence + 1
                WHERE u.last_sequence > u.published_sequence AND u.publish_error IS NULL),
               count(*) FILTER (WHERE s.publish_error IS NOT NULL)
        FROM agent_streams s WHERE s.last_sequence > s.published_sequence;
        SELECT 'agent ' || agent_id || ': ' || publish_error FROM agent_streams
        WHERE last_sequence > published_sequence AND publish_error IS NOT NULL ORDER BY agent_id LIMIT 10;
        SELECT p.partition_id, CASE WHEN p.lease_expires_at > now() THEN p.owner_instance END, coalesce(l.lag, 0)::bigint
        FROM outbox_partitions p
        LEFT JOIN (SELECT s.agent_id % (SELECT count(*)::int FROM outbox_partitions) AS partition_id,
                          sum(s.last_sequence - s.published_sequence) AS lag
                   FROM agent_streams s WHERE s.last_sequence > s.published_sequence GROUP BY 1) l USING (partition_id)
        ORDER BY p.partition_id;
        SELECT state, count(*) FROM agent_sessions GROUP BY state;
        """;

    private static readonly string[] States = [.. Enum.GetValues<AgentSessionState>().Select(AgentSessionStates.ToText)];

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly IOptions<OutboxOptions> _options;
    private readonly ILogger<OutboxMonitor> _logger;
    private volatile OutboxSnapshot? _latest;
    private bool _failing;

    public OutboxMonitor(
        NpgsqlDataSource dataSource, TimeProvider time, IOptions<OutboxOptions> options, IMeterFactory meterFactory, ILogger<OutboxMonitor> logger)
    {
        _dataSource = dataSource;
        _time = time;
        _options = options;
        _logger = logger;

        var meter = meterFactory.Create(CallbackHubMetrics.MeterName);
        meter.CreateObservableGauge("callbackhub.outbox.backlog", () => Observe(s => s.Backlog), "{event}",
            "Stored events not yet confirmed by RabbitMQ (the same value on every replica: aggregate with max).");
        meter.CreateObservableGauge("callbackhub.outbox.oldest_unpublished_age", () => Observe(s => OldestAge(s).TotalSeconds), "s",
            "Age of the oldest stored event not yet confirmed by RabbitMQ, stuck agents left out; 0 when there is none.");
        meter.CreateObservableGauge("callbackhub.outbox.agents_stuck", () => Observe(s => s.StuckAgents), "{agent}",
            "Agents whose next event failed to publish too often (their later events wait; the others go on).");
        meter.CreateObservableGauge("callbackhub.outbox.partition.lag", ObservePartitions, "{event}",
            "Unpublished events per partition, with the instance that holds it (owner=\"\" when none).");
        meter.CreateObservableGauge("callbackhub.sessions", ObserveSessions, "{session}", "Agent sessions, by state.");
    }

    /// <summary>The last successful read, or null before the first one.</summary>
    public OutboxSnapshot? Latest => _latest;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Value.StatusRefresh, _time);
        do
        {
            try
            {
                _latest = await ReadAsync(stoppingToken);
                _failing = false;
            }
            catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever goes wrong here must not end the service (a failed BackgroundService stops the host):
                // PostgreSQL being away is reported by the readiness check, and the stale snapshot shows it here.
                // One warning per outage, not one per round.
                if (!_failing)
                {
                    LogReadFailed(exception.Message);
                }

                _failing = true;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task<OutboxSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(Query);
        command.CommandTimeout = 5;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var backlog = reader.GetInt64(0);
        DateTimeOffset? oldest = reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1);
        var stuckAgents = reader.GetInt64(2);
        await reader.NextResultAsync(cancellationToken);
        var stuck = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            stuck.Add(reader.GetString(0));
        }

        await reader.NextResultAsync(cancellationToken);
        var partitions = new List<PartitionStatus>();
        while (await reader.ReadAsync(cancellationToken))
        {
            partitions.Add(new PartitionStatus(reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2)));
        }

        await reader.NextResultAsync(cancellationToken);
        var sessions = States.ToDictionary(s => s, _ => 0L);
        while (await reader.ReadAsync(cancellationToken))
        {
            sessions[reader.GetString(0)] = reader.GetInt64(1);
        }

        return new OutboxSnapshot(backlog, oldest, stuckAgents, stuck, partitions, sessions, _time.GetUtcNow());
    }

    private IEnumerable<Measurement<T>> Observe<T>(Func<OutboxSnapshot, T> value)
        where T : struct =>
        _latest is { } s ? [new Measurement<T>(value(s))] : [];

    private IEnumerable<Measurement<long>> ObservePartitions() =>
        _latest is { } s
            ? s.Partitions.Select(p => new Measurement<long>(p.Lag,
                new KeyValuePair<string, object?>("partition", p.Id), new KeyValuePair<string, object?>("owner", p.Owner ?? "")))
            : [];

    private IEnumerable<Measurement<long>> ObserveSessions() =>
        _latest is { } s
            ? s.SessionsByState.Select(p => new Measurement<long>(p.Value, new KeyValuePair<string, object?>("state", p.Key)))
            : [];

    /// <summary>How long the oldest unpublished event has been waiting, as of now.</summary>
    public TimeSpan OldestAge(OutboxSnapshot snapshot) =>
        snapshot.OldestUnpublishedAt is { } oldest ? TimeSpan.FromTicks(Math.Max(0, (_time.GetUtcNow() - oldest).Ticks)) : TimeSpan.Zero;

    [LoggerMessage(LogLevel.Warning, "Could not read the outbox status for metrics and readiness: {Reason}")]
    private partial void LogReadFailed(string reason);
}

/// <summary>
/// The outbox is moving: its oldest unpublished event (of an agent not stuck) is younger than <c>Outbox__StalledAfter</c>.
/// Stuck agents are named in the description but do not fail readiness: taking the replica out would stop every agent's
/// pushes for one agent's unpublishable event.
/// </summary>
internal sealed class OutboxHealthCheck(OutboxMonitor monitor, TimeProvider time, IOptions<OutboxOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        var snapshot = monitor.Latest;
        // A status not refreshed for three rounds is unknown, not "fine".
        if (snapshot is null || time.GetUtcNow() - snapshot.ReadAt > 3 * o.StatusRefresh)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus,
                snapshot is null ? "The outbox has not been read yet." : $"The outbox could not be read since {snapshot.ReadAt:O}."));
        }

        var age = monitor.OldestAge(snapshot);
        var owned = snapshot.Partitions.Count(p => p.Owner is not null);
        var description = $"{snapshot.Backlog} events unpublished, the oldest waiting {age.TotalSeconds:0} s; {owned} of {snapshot.Partitions.Count} partitions held.";
        if (snapshot.StuckAgents > 0)
        {
            description += $" {snapshot.StuckAgents} agent(s) stuck: {string.Join("; ", snapshot.Stuck)}.";
        }

        return Task.FromResult(age > o.StalledAfter
            ? new HealthCheckResult(context.Registration.FailureStatus, $"The outbox is stalled: {description} (Outbox__StalledAfter is {o.StalledAfter}).")
            : HealthCheckResult.Healthy(description));
    }
}
