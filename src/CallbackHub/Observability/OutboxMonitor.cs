using System.Diagnostics.Metrics;
using CallbackHub.Hosting;
using CallbackHub.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Observability;

/// <summary>What the outbox and the sessions looked like at <see cref="ReadAt"/>.</summary>
internal sealed record OutboxSnapshot(
    long Backlog, DateTimeOffset? OldestUnpublishedAt, IReadOnlyDictionary<string, long> SessionsByState, DateTimeOffset ReadAt);

/// <summary>
/// Reads the outbox backlog and the session counts every <see cref="ObservabilityOptions.StatusRefresh"/> and
/// exposes them as gauges and to the readiness check. Sampling in the background keeps scrapes and probes from
/// querying PostgreSQL themselves (many replicas × many scrapers), and gauges callbacks are synchronous anyway.
/// </summary>
internal sealed partial class OutboxMonitor : BackgroundService
{
    // The backlog is found through the partial index ix_agent_events_unpublished, small however big the table is.
    private const string Query = """
        SELECT count(*), (SELECT received_at FROM agent_events WHERE published_at IS NULL ORDER BY id LIMIT 1)
        FROM agent_events WHERE published_at IS NULL;
        SELECT state, count(*) FROM agent_sessions GROUP BY state;
        """;

    private static readonly string[] States = [.. Enum.GetValues<AgentSessionState>().Select(AgentSessionStates.ToText)];

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly IOptions<ObservabilityOptions> _options;
    private readonly ILogger<OutboxMonitor> _logger;
    private volatile OutboxSnapshot? _latest;
    private bool _failing;

    public OutboxMonitor(
        NpgsqlDataSource dataSource, TimeProvider time, IOptions<ObservabilityOptions> options,
        IMeterFactory meterFactory, ILogger<OutboxMonitor> logger)
    {
        _dataSource = dataSource;
        _time = time;
        _options = options;
        _logger = logger;

        var meter = meterFactory.Create(CallbackHubMetrics.MeterName);
        meter.CreateObservableGauge("callbackhub.outbox.backlog", ObserveBacklog, "{event}",
            "Stored events not yet confirmed by RabbitMQ (the same value on every replica: aggregate with max).");
        meter.CreateObservableGauge("callbackhub.outbox.oldest_unpublished_age", ObserveOldestAge, "s",
            "Age of the oldest stored event not yet confirmed by RabbitMQ; 0 when there is none.");
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
        await reader.NextResultAsync(cancellationToken);
        var sessions = States.ToDictionary(s => s, _ => 0L);
        while (await reader.ReadAsync(cancellationToken))
        {
            sessions[reader.GetString(0)] = reader.GetInt64(1);
        }

        return new OutboxSnapshot(backlog, oldest, sessions, _time.GetUtcNow());
    }

    private IEnumerable<Measurement<long>> ObserveBacklog() =>
        _latest is { } s ? [new Measurement<long>(s.Backlog)] : [];

    private IEnumerable<Measurement<double>> ObserveOldestAge() =>
        _latest is { } s ? [new Measurement<double>(OldestAge(s).TotalSeconds)] : [];

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
