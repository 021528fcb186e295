using System.Collections.Concurrent;
using CallbackHub.Contracts;
using CallbackHub.Hosting;
using MassTransit;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Publishing;

/// <summary>
/// Publishes committed events to RabbitMQ and marks them published: the second half of our transactional
/// outbox. Agents are published concurrently; one agent's events strictly one after another, each awaiting
/// the broker's confirm, so the wire order per agent is the sequence order. At-least-once: a crash between a
/// confirm and the mark re-publishes (same EventId).
/// </summary>
internal sealed partial class OutboxDispatcher(
    NpgsqlDataSource dataSource,
    OutboxLeadership leadership,
    OutboxSignal signal,
    IBus bus,
    TimeProvider time,
    CallbackHubMetrics metrics,
    IOptions<OutboxOptions> options,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    private const string FetchSql = """
        SELECT id, event_id, agent_id, sequence, event_type, content::text, event_gen_time, received_at
        FROM agent_events WHERE published_at IS NULL ORDER BY id LIMIT $1
        """;

    private const string MarkSql = "UPDATE agent_events SET published_at = $1 WHERE id = ANY($2)";

    private CancellationToken _stopping;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await leadership.LeadAsync(DispatchAsync, options.Value.PollInterval, stoppingToken);
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogDispatcherFailed(e);
                await DelayAsync(++failures, stoppingToken);
            }
        }
    }

    private async Task DispatchAsync(CancellationToken cancellationToken)
    {
        try
        {
            await DispatchUntilCancelledAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        if (_stopping.IsCancellationRequested)
        {
            // Shutting down (the web server has already answered its last pushes): publish what is still
            // waiting while this instance still holds the lock, so nothing waits for the next start.
            await FlushAsync();
        }
    }

    private async Task FlushAsync()
    {
        using var timeout = new CancellationTokenSource(options.Value.ShutdownFlushTimeout);
        try
        {
            (int Fetched, bool Failed) round;
            do
            {
                round = await PublishRoundAsync(timeout.Token);
            }
            while (round is { Fetched: > 0, Failed: false });
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException)
        {
            LogFlushIncomplete(e);
        }
    }

    private async Task DispatchUntilCancelledAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            await signal.WaitAsync(options.Value.PollInterval, cancellationToken);
            bool more;
            do
            {
                var round = await PublishRoundAsync(cancellationToken);
                if (round.Failed)
                {
                    // The broker is away or refusing: back off, the rows wait safely in PostgreSQL.
                    await DelayAsync(++failures, cancellationToken);
                    break;
                }

                failures = 0;
                more = round.Fetched == options.Value.BatchSize;
            }
            while (more);
        }
    }

    private async Task<(int Fetched, bool Failed)> PublishRoundAsync(CancellationToken cancellationToken)
    {
        var rows = await FetchAsync(cancellationToken);
        if (rows.Count == 0)
        {
            return (0, false);
        }

        var published = new ConcurrentQueue<long>();
        var failed = false;
        try
        {
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.Value.MaxConcurrentAgents, CancellationToken = cancellationToken };
            await Parallel.ForEachAsync(rows.GroupBy(r => r.AgentId), parallel, async (agentRows, token) =>
            {
                foreach (var row in agentRows)
                {
                    if (!await TryPublishAsync(row, token))
                    {
                        // Stop this agent here: publishing its later events now would break its order.
                        failed = true;
                        return;
                    }

                    published.Enqueue(row.Id);
                }
            });
        }
        finally
        {
            // Even when stopping: what the broker confirmed is marked, so a restart does not send it again.
            await MarkPublishedAsync(published.ToArray());
        }

        return (rows.Count, failed);
    }

    private async Task<bool> TryPublishAsync(OutboxRow row, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.PublishTimeout);
        try
        {
            var message = new AgentEventReceived(
                row.EventId, row.AgentId, row.EventType, row.Sequence, row.Content, row.GeneratedAt, row.ReceivedAt);
            await bus.Publish(message, context =>
            {
                context.MessageId = row.EventId;
                context.SetRoutingKey(AgentEventTopology.RoutingKey(row.EventType, row.AgentId));
            }, timeout.Token);
            return true;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            LogPublishFailed(e, row.AgentId, row.Sequence);
            return false;
        }
    }

    private async Task<List<OutboxRow>> FetchAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(FetchSql);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = options.Value.BatchSize });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<OutboxRow>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new OutboxRow(
                reader.GetInt64(0),
                reader.GetGuid(1),
                reader.GetInt32(2),
                reader.GetInt64(3),
                reader.GetString(4),
                reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetFieldValue<DateTimeOffset>(6),
                reader.GetFieldValue<DateTimeOffset>(7)));
        }

        return rows;
    }

    private async Task MarkPublishedAsync(long[] ids)
    {
        if (ids.Length == 0)
        {
            return;
        }

        await using var command = dataSource.CreateCommand(MarkSql);
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = time.GetUtcNow() });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids });
        await command.ExecuteNonQueryAsync(CancellationToken.None);
        metrics.EventsPublished(ids.Length);
    }

    private Task DelayAsync(int failures, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(Math.Min(options.Value.MaxRetryDelay.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures, 16))));
        return Task.Delay(delay, time, cancellationToken);
    }

    private sealed record OutboxRow(
        long Id, Guid EventId, int AgentId, long Sequence, string EventType, string Content, DateTimeOffset? GeneratedAt, DateTimeOffset ReceivedAt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down before the outbox was empty; the rest is published after the next start")]
    private partial void LogFlushIncomplete(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox dispatcher lost its database connection; it will try again")]
    private partial void LogDispatcherFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publishing event {Sequence} of agent {AgentId} failed; it stays in the outbox and is retried")]
    private partial void LogPublishFailed(Exception exception, int agentId, long sequence);
}
