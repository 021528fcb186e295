using Npgsql;

namespace CallbackHub.Publishing;

/// <summary>
/// Exactly one instance publishes the outbox at a time, so per-agent order holds across instances. The leader
/// holds a PostgreSQL session advisory lock on a dedicated connection, which also LISTENs for commits made by
/// the other instances; if the connection drops, the lock is released and another instance takes over.
/// </summary>
internal sealed class OutboxLeadership(NpgsqlDataSource dataSource, OutboxSignal signal, ILogger<OutboxLeadership> logger)
{
    // An arbitrary constant that names "the CallbackHub outbox" among advisory locks.
    private const long LockKey = 0x43_42_48_4F_55_54; // "CBHOUT"

    private volatile bool _isLeader;

    /// <summary>True while this instance runs the dispatcher; pushes taken elsewhere must NOTIFY it.</summary>
    public bool IsLeader => _isLeader;

    /// <summary>Runs <paramref name="lead"/> while this instance holds the lock; returns when leadership is lost.</summary>
    public async Task LeadAsync(Func<CancellationToken, Task> lead, TimeSpan retryInterval, CancellationToken stoppingToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
        while (!await TryLockAsync(connection, stoppingToken))
        {
            await Task.Delay(retryInterval, stoppingToken);
        }

        logger.LogInformation("This instance now publishes the outbox");
        connection.Notification += (_, _) => signal.Notify();
        await using (var listen = new NpgsqlCommand($"LISTEN {Storage.EventStore.OutboxChannel}", connection))
        {
            await listen.ExecuteNonQueryAsync(stoppingToken);
        }

        using var leadership = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        _isLeader = true;
        // Commits made before LISTEN took effect sent no notification we could see: look once now.
        signal.Notify();
        var leading = lead(leadership.Token);
        var watching = WatchAsync(connection, leadership.Token);
        try
        {
            // Whichever ends first ends leadership: the dispatcher failing, or the lock's connection dropping.
            await await Task.WhenAny(leading, watching);
        }
        finally
        {
            _isLeader = false;
            await leadership.CancelAsync();
            await Task.WhenAll(leading, watching).ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private static async Task<bool> TryLockAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock($1)", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = LockKey });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// Delivers notifications, and pings the connection when none came for a while so that a dead connection
    /// (and with it a lost lock) is noticed: it throws then.
    /// </summary>
    private static async Task WatchAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if (!await connection.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken))
            {
                await using var ping = new NpgsqlCommand("SELECT 1", connection);
                await ping.ExecuteScalarAsync(cancellationToken);
            }
        }
    }
}
