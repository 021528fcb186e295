using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Outbox;

/// <summary>
/// Wakes the publisher of an agent's partition once its events are committed. The publisher is often this instance:
/// an in-process signal. Otherwise one NOTIFY on <see cref="Channel"/>, naming the partitions, sent after the commit
/// (never inside it: PostgreSQL serialises committing transactions that notified) and shared by every commit of the
/// last <see cref="OutboxOptions.WakeupCoalesce"/>. Every instance LISTENs and wakes its publisher when a notification
/// names a partition it holds. Lost notifications cost at most one <see cref="OutboxOptions.PollInterval"/>.
/// </summary>
internal sealed partial class OutboxWakeups(
    NpgsqlDataSource dataSource, OutboxPartitions partitions, OutboxBackpressure backpressure, IOptions<OutboxOptions> options,
    ILogger<OutboxWakeups> logger)
{
    public const string Channel = "callbackhub_outbox";

    // One pending wake-up is enough: the publisher reads everything unpublished when it wakes.
    private readonly Channel<bool> _local = System.Threading.Channels.Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    private readonly Channel<bool> _remote = System.Threading.Channels.Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    private readonly Lock _gate = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<CommittedPush> _handoffs = new();
    private HashSet<int> _remotePartitions = [];
    private int _fetchRequested = 1;

    /// <summary>
    /// These pushes were committed. Those of agents this instance publishes are handed to its publisher as they are (it
    /// sends them without reading them back, when they are next in line); for the others, their publisher is notified.
    /// </summary>
    public void Committed(IReadOnlyCollection<CommittedPush> pushes)
    {
        var local = false;
        var remote = false;
        foreach (var push in pushes)
        {
            var agentId = push.AgentId;
            if (partitions.Publishes(agentId))
            {
                backpressure.Added(push.StoredContents.Length);
                _handoffs.Enqueue(push);
                local = true;
                continue;
            }

            var partition = partitions.PartitionOf(agentId);
            lock (_gate)
            {
                _remotePartitions.Add(partition);
            }

            remote = true;
        }

        if (local)
        {
            Wake();
        }

        if (remote)
        {
            _remote.Writer.TryWrite(true);
        }
    }

    /// <summary>Wakes this instance's publisher.</summary>
    public void Wake() => _local.Writer.TryWrite(true);

    /// <summary>Wakes this instance's publisher to read the database: something may be there that it was not handed.</summary>
    public void RequestFetch()
    {
        Volatile.Write(ref _fetchRequested, 1);
        Wake();
    }

    /// <summary>Whether a read was asked for since the last call.</summary>
    public bool TakeFetchRequest() => Interlocked.Exchange(ref _fetchRequested, 0) == 1;

    /// <summary>The pushes committed here since the last call, for agents this instance publishes.</summary>
    public List<CommittedPush> TakeHandoffs()
    {
        var taken = new List<CommittedPush>();
        while (_handoffs.TryDequeue(out var push))
        {
            taken.Add(push);
        }

        return taken;
    }

    /// <summary>Waits until woken or until <paramref name="timeout"/> passes (the poll: then a read is due).</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_local.Reader.TryRead(out _))
        {
            return;
        }

        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(timeout);
        try
        {
            await _local.Reader.ReadAsync(timer.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The poll interval passed without a signal.
            Volatile.Write(ref _fetchRequested, 1);
        }
    }

    /// <summary>Sends the coalesced NOTIFYs until stopped.</summary>
    public async Task NotifyAsync(CancellationToken stoppingToken)
    {
        while (await _remote.Reader.WaitToReadAsync(stoppingToken))
        {
            _remote.Reader.TryRead(out _);
            HashSet<int> due;
            lock (_gate)
            {
                (due, _remotePartitions) = (_remotePartitions, []);
            }

            // "-1": the partition count is not known yet; every instance wakes.
            var payload = string.Join(',', due.Order().Select(p => p.ToString(CultureInfo.InvariantCulture)));
            try
            {
                await using var command = dataSource.CreateCommand("SELECT pg_notify($1, $2)");
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Channel });
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = payload });
                await command.ExecuteNonQueryAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                LogNotifyFailed(e.Message);
            }

            await Task.Delay(options.Value.WakeupCoalesce, stoppingToken);
        }
    }

    /// <summary>LISTENs on a dedicated connection until stopped, reconnecting after failures.</summary>
    public async Task ListenAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => OnNotification(e.Payload);
                try
                {
                    await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                    {
                        await listen.ExecuteNonQueryAsync(stoppingToken);
                    }

                    // Commits made before LISTEN took effect sent nothing we could see: look once now.
                    RequestFetch();
                    while (!stoppingToken.IsCancellationRequested)
                    {
                        if (!await connection.WaitAsync(TimeSpan.FromSeconds(5), stoppingToken))
                        {
                            // Nothing for a while: make sure the connection is still there (a dead one throws).
                            await using var ping = new NpgsqlCommand("SELECT 1", connection);
                            await ping.ExecuteScalarAsync(stoppingToken);
                        }
                    }
                }
                finally
                {
                    await UnlistenAsync(connection);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                LogListenFailed(e.Message);
                await Task.Delay(options.Value.PollInterval, stoppingToken);
            }
        }
    }

    /// <summary>
    /// Pooled connections are not reset when returned (Database: NoResetOnClose): one that still works goes back without
    /// its LISTEN, or every later user of it would be sent the notifications.
    /// </summary>
    private static async Task UnlistenAsync(NpgsqlConnection connection)
    {
        if (connection.FullState != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
            await unlisten.ExecuteNonQueryAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or OperationCanceledException)
        {
            // Broken after all: the pool discards it.
        }
    }

    private void OnNotification(string payload)
    {
        var held = partitions.Held;
        foreach (var part in payload.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) || id < 0 || held.ContainsKey(id))
            {
                RequestFetch();
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not send the outbox wake-up ({Reason}); the other instances poll")]
    private partial void LogNotifyFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the outbox wake-up connection ({Reason}); polling until it is back")]
    private partial void LogListenFailed(string reason);
}
