using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Outbox;

/// <summary>
/// Wakes the publisher of an agent's partition once its events are committed. The publisher is often this instance:
/// an in-process signal. Otherwise one NOTIFY on <see cref="Channel"/>, naming the agents, sent after the commit (never
/// inside it: PostgreSQL serialises committing transactions that notified) and shared by every commit of the last
/// <see cref="OutboxOptions.WakeupCoalesce"/>. Every instance LISTENs and has its publisher read the named agents of the
/// partitions it holds (by primary key: a few rows, however many agents there are); a notification that names partitions
/// instead (too many agents for one payload, or an older instance's) has it read every agent of its partitions. Lost
/// notifications cost at most one <see cref="OutboxOptions.PollInterval"/>.
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
    private HashSet<int> _remoteAgents = [];
    private HashSet<int> _fetchAgents = [];
    private int _fetchRequested = 1;

    // A payload must stay under PostgreSQL's 8,000 bytes: this many agents ("999999,") take at most 7,000.
    internal const int MaxAgentsPerNotify = 1_000;

    // Partitions alone (up to 4,096 of them, "4095,") can take more: beyond this, "-1" (every instance reads).
    private const int MaxPayloadLength = 7_900;

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
                _remoteAgents.Add(agentId);
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

    /// <summary>
    /// Wakes this instance's publisher to read the database for every agent of its partitions: something may be there that
    /// it was not handed.
    /// </summary>
    public void RequestFetch()
    {
        Volatile.Write(ref _fetchRequested, 1);
        Wake();
    }

    /// <summary>Wakes this instance's publisher to read these agents' rows: another instance committed events of theirs.</summary>
    public void RequestFetch(IEnumerable<int> agentIds)
    {
        lock (_gate)
        {
            _fetchAgents.UnionWith(agentIds);
        }

        Wake();
    }

    /// <summary>What was asked for since the last call: a read of every agent, and the agents to read in any case.</summary>
    public (bool All, IReadOnlyCollection<int> Agents) TakeFetchRequest()
    {
        var all = Interlocked.Exchange(ref _fetchRequested, 0) == 1;
        lock (_gate)
        {
            // Most rounds nothing was named: no set is made for them.
            if (_fetchAgents.Count == 0)
            {
                return (all, []);
            }

            var agents = _fetchAgents;
            _fetchAgents = [];
            return (all, agents);
        }
    }

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
            HashSet<int> agents;
            lock (_gate)
            {
                (due, _remotePartitions) = (_remotePartitions, []);
                (agents, _remoteAgents) = (_remoteAgents, []);
            }

            var payload = FormatPayload(due, agents);
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

    /// <summary>
    /// "|1001,2045": the agents (each receiver works out their partitions with its own count), when there are at most
    /// <see cref="MaxAgentsPerNotify"/>; otherwise "3,17": the partitions by the sender's count ("-1" when it did not know it
    /// yet, or when the list would not fit in a payload: every instance reads). Instances before the agents were named read a
    /// payload with "|" as one they cannot parse, and read every agent of their partitions: still correct.
    /// </summary>
    internal static string FormatPayload(IEnumerable<int> partitionIds, IReadOnlyCollection<int> agentIds)
    {
        if (agentIds.Count is > 0 and <= MaxAgentsPerNotify)
        {
            return "|" + string.Join(',', agentIds.Order().Select(a => a.ToString(CultureInfo.InvariantCulture)));
        }

        var text = string.Join(',', partitionIds.Order().Select(p => p.ToString(CultureInfo.InvariantCulture)));
        return text.Length > MaxPayloadLength ? "-1" : text;
    }

    /// <summary>The payload's partitions and agents (null: not named); false when it cannot be read.</summary>
    internal static bool TryParsePayload(string payload, out List<int> partitionIds, out List<int>? agentIds)
    {
        partitionIds = [];
        agentIds = null;
        var parts = payload.Split('|');
        if (parts.Length > 2 || !TryParseList(parts[0], partitionIds))
        {
            return false;
        }

        if (parts.Length == 2)
        {
            agentIds = [];
            return TryParseList(parts[1], agentIds) && agentIds.All(a => a >= 0);
        }

        return true;
    }

    private static bool TryParseList(string text, List<int> into)
    {
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id))
            {
                return false;
            }

            into.Add(id);
        }

        return true;
    }

    private void OnNotification(string payload)
    {
        var held = partitions.Held;
        if (!TryParsePayload(payload, out var partitionIds, out var agentIds))
        {
            RequestFetch();
            return;
        }

        if (agentIds is null)
        {
            // Partitions only: every agent of a named one this instance holds is read ("-1": the sender did not know the count).
            if (partitionIds.Any(id => id < 0 || held.ContainsKey(id)))
            {
                RequestFetch();
            }

            return;
        }

        // The partition is this instance's own computation: right even when the sender was configured with another count.
        var mine = agentIds.Where(a => held.ContainsKey(partitions.PartitionOf(a))).ToList();
        if (mine.Count > 0)
        {
            RequestFetch(mine);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not send the outbox wake-up ({Reason}); the other instances poll")]
    private partial void LogNotifyFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the outbox wake-up connection ({Reason}); polling until it is back")]
    private partial void LogListenFailed(string reason);
}
