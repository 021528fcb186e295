using System.Collections.Concurrent;
using System.Diagnostics;
using CallbackHub.Agents;
using CallbackHub.Contracts;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace CallbackHub.Outbox;

/// <summary>
/// Publishes the committed events of the partitions this instance holds, and records how far each agent is published.
/// What a push committed on this instance is sent as it is (the fast path); the database is read only when something may be
/// there that was not handed over (a gap, a new agent, a commit on another instance, the poll), for the held partitions and
/// after what is already in flight. The confirmed progress is recorded every few milliseconds in the background — fenced
/// by each partition's epoch in the same statement. Events go to the broker
/// pipelined (up to <see cref="OutboxOptions.MaxInFlight"/> unconfirmed), each agent's in sequence on its channel;
/// rounds are woken by commits, confirms and lease changes, with the poll as a backstop. A nack, a closed channel or an
/// overdue confirm republishes the agent from its first unconfirmed event. An agent whose own messages keep failing backs
/// off alone and is reported stuck; the others go on.
/// </summary>
internal sealed partial class OutboxDispatcher(
    NpgsqlDataSource dataSource,
    OutboxPartitions partitions,
    OutboxWakeups wakeups,
    OutboxBroker broker,
    OutboxBackpressure backpressure,
    OutboxMetrics metrics,
    IOptions<OutboxOptions> options,
    IOptions<SessionKeepingOptions> sessions,
    ILogger<OutboxDispatcher> logger) : BackgroundService
{
    // The agents of the held partitions with something unpublished after what is in flight ($1/$2: the lanes in memory
    // and their highest sent sequence, or bigint max for an agent pausing after failures); those in $7 (through the primary
    // key), or all of them from agent $7 on, in agent order. agent_streams has no index on "unpublished" (its updates would
    // not be HOT): reading all of it walks the whole table, so it is done only when something may be anywhere (a lease
    // change, a reconnect, the poll), and a read cut short by the budget goes on from where it stopped.
    private const string FetchAllSql = $"""
        {FetchSelectSql}
          AND s.agent_id >= $7
        ORDER BY s.agent_id, e.sequence
        LIMIT $6
        """;

    private const string FetchAgentsSql = $"""
        {FetchSelectSql}
          AND s.agent_id = ANY($7::int[])
        LIMIT $6
        """;

    private const string FetchSelectSql = """
        SELECT s.agent_id, s.published_sequence, e.sequence, e.event_id, e.event_type, e.content::text, e.event_gen_time, e.received_at
        FROM agent_streams s
        LEFT JOIN unnest($1::int[], $2::bigint[]) AS c(agent_id, sent) ON c.agent_id = s.agent_id
        CROSS JOIN LATERAL (
            SELECT e.sequence, e.event_id, e.event_type, e.content, e.event_gen_time, e.received_at
            FROM agent_events e
            WHERE e.agent_id = s.agent_id AND e.sequence > greatest(s.published_sequence, coalesce(c.sent, 0))
            ORDER BY e.sequence
            LIMIT $3) e
        WHERE s.last_sequence > s.published_sequence AND s.last_sequence > coalesce(c.sent, 0)
          AND s.agent_id % $4 = ANY($5::int[])
        """;

    // Progress is not worth a WAL flush of its own: lost in a crash of PostgreSQL, it only means events published again.
    // So the round's short transaction does not wait for the disk while it holds stream rows pushes want. The record is
    // prepared and runs its generic plan (index scans whatever the arrays hold, OutboxPlanTests): left to choose, PostgreSQL
    // planned it on every run, about as long as running it.
    private const string RecordSettingsSql =
        "SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)";

    // The fence: progress is recorded only for partitions this instance still holds under the epoch it published by.
    // FOR SHARE makes a takeover wait for this statement, or this statement see the takeover. Stream rows a push holds
    // right now are skipped (recorded next round): pushes never wait for a whole round's rows, and the rows taken are
    // taken in agent order, as the group commits take theirs, so the two never wait on each other in a cycle.
    internal const string RecordSql = """
        WITH fence AS (
            SELECT partition_id, epoch FROM outbox_partitions
            WHERE owner_instance = $5 AND partition_id = ANY($3)
            FOR SHARE),
        free AS (
            SELECT agent_id FROM agent_streams WHERE agent_id = ANY($1) ORDER BY agent_id FOR UPDATE SKIP LOCKED)
        UPDATE agent_streams s SET published_sequence = greatest(s.published_sequence, v.seq), publish_error = NULL
        FROM unnest($1::int[], $2::bigint[], $3::int[], $4::bigint[]) AS v(agent_id, seq, partition_id, epoch)
        JOIN fence f ON f.partition_id = v.partition_id AND f.epoch = v.epoch
        WHERE s.agent_id = v.agent_id AND s.agent_id IN (SELECT agent_id FROM free)
        RETURNING s.agent_id, s.published_sequence
        """;

    private static readonly TimeSpan RecordInterval = TimeSpan.FromMilliseconds(25);

    // Pushes let in after waiting their longest (see OutboxBackpressure) can take the queue past Outbox__MaxQueued: up to this
    // many times that, their events still wait in memory; beyond it they are read back from PostgreSQL.
    private const int QueueCapFactor = 4;

    // About 300 bytes each: the agents of tens of thousands keep theirs.
    private const int MaxLanes = 65_536;

    private static readonly TimeSpan ConnectRetryCap = TimeSpan.FromMilliseconds(500);

    // A stuck agent is tried again this many longest pauses apart: each try may cost the others on its channel a republish.
    private const int StuckRetryFactor = 20;

    private const string StuckSql = "UPDATE agent_streams SET publish_error = $2 WHERE agent_id = $1";

    private readonly Dictionary<int, AgentLane> _lanes = [];

    // Agents to read from the database at the next fetch (handed over out of line, or committed on another instance).
    private readonly HashSet<int> _fetchAgents = [];
    private readonly List<AgentLane> _newlyStuck = [];

    // Events committed here, in commit order, that wait for room in the confirm window (at most QueueCapFactor × MaxQueued).
    private readonly Queue<OutboxEvent> _queued = new();
    private readonly ConcurrentQueue<(PublishItem Item, PublishResult Result, string? Reason)> _outcomes = new();
    private int _inFlight;
    private volatile HashSet<int> _unsettled = [];
    private long _unsettledAt;
    private IReadOnlyDictionary<int, HeldPartition>? _lanesCheckedAgainst;
    private long _recordedAt;
    private long _earliestRetry = long.MaxValue;
    private long _nextConnectAt;
    private bool _refetch = true;
    private long _fetchedAllAt;

    // Where the full read in progress goes on (0: the next one starts a new pass), and which kind of read the last one was.
    private int _fetchAllFrom;
    private bool _lastFetchNamed;
    private bool _recordPending;
    private Task<(List<AgentLane> Lanes, Dictionary<int, long> Recorded)>? _recording;
    private int _connectFailures;

    private OutboxOptions Options => options.Value;
    private string InstanceId => sessions.Value.InstanceId;

    /// <summary>Messages sent and not yet settled.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        broker.Completed = (item, result, reason) =>
        {
            _outcomes.Enqueue((item, result, reason));
            wakeups.Wake();
        };
        metrics.ObserveInFlight(() => InFlight);

        using var background = new CancellationTokenSource();
        var leasing = LeaseAsync(background.Token);
        var listening = wakeups.ListenAsync(background.Token);
        var notifying = wakeups.NotifyAsync(background.Token).ContinueWith(static _ => { }, TaskScheduler.Default);
        try
        {
            await PublishUntilStoppedAsync(stoppingToken);
            await FlushAsync();
        }
        finally
        {
            if (_recording is { } recording)
            {
                await recording; // never throws: a failed write is logged and left for the next owner
            }

            await background.CancelAsync();
            await Task.WhenAll(leasing, listening, notifying).ContinueWith(static _ => { }, TaskScheduler.Default);
            await HandBackAsync();
        }
    }

    private async Task PublishUntilStoppedAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await wakeups.WaitAsync(NextWait(), stoppingToken);
                if (await RoundAsync(stoppingToken))
                {
                    wakeups.Wake();
                }

                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogRoundFailed(e.Message);
                await Task.Delay(Backoff(++failures), stoppingToken).ContinueWith(static _ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>
    /// Shutting down (this instance takes no more pushes): publish what the held partitions still have and record it,
    /// so nothing waits for a lease to run out.
    /// </summary>
    private async Task FlushAsync()
    {
        using var timeout = new CancellationTokenSource(Options.ShutdownFlushTimeout);
        try
        {
            while (!timeout.IsCancellationRequested && broker.IsOpen)
            {
                wakeups.RequestFetch();
                var more = await RoundAsync(timeout.Token);
                if (!more && _queued.Count == 0 && _lanes.Values.All(l => l.Settled) && _outcomes.IsEmpty)
                {
                    return;
                }

                await wakeups.WaitAsync(TimeSpan.FromMilliseconds(50), timeout.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException or TimeoutException or InvalidOperationException)
        {
            LogFlushIncomplete(e.Message);
        }
    }

    private async Task HandBackAsync()
    {
        // The connection first: nothing still queued may be sent once another instance can own the partitions.
        await broker.CloseAsync();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await partitions.ReleaseAllAsync(InstanceId, timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException or TimeoutException)
        {
            // The leases run out on their own.
            LogFlushIncomplete(e.Message);
        }
    }

    private async Task LeaseAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Options.LeaseRenewInterval);
        do
        {
            try
            {
                var unsettled = _unsettled;
                var changes = await partitions.RenewAndBalanceAsync(
                    InstanceId, Options.Partitions, Options.LeaseDuration, id => !unsettled.Contains(id), cancellationToken);
                metrics.LeaseChanges(changes);
                if (changes.Any)
                {
                    wakeups.RequestFetch();
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Whatever it was, the next round tries again; publishing stops on its own when the local lease runs out.
                LogLeaseFailed(e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken).AsTask().ContinueWith(t => t is { IsCompletedSuccessfully: true, Result: true }, TaskScheduler.Default));
    }

    /// <summary>One round; true when there is more to do at once.</summary>
    private async Task<bool> RoundAsync(CancellationToken cancellationToken)
    {
        var published = Settle();
        if (published > 0)
        {
            metrics.EventsPublished(published);
        }

        var now = Stopwatch.GetTimestamp();
        if (!broker.IsOpen)
        {
            await ConnectAsync(now, cancellationToken);
        }
        else if (await broker.DropIfOverdueAsync())
        {
            return true;
        }

        DropLanesNotHeld();
        // What was committed here is sent as it is when it is next in line; anything else is read from the database: the
        // agents it concerns, or every agent when anything may be anywhere.
        var (all, agents) = wakeups.TakeFetchRequest();
        // The poll, even while wake-ups keep coming: a lost notification costs at most one poll interval.
        var fetchAll = all || _refetch || Stopwatch.GetElapsedTime(_fetchedAllAt) >= Options.PollInterval;
        if (all && _fetchAllFrom > 0)
        {
            _fetchedAllAt = 0; // asked for while a pass is under way: another pass from the first agent once it is done
        }

        _fetchAgents.UnionWith(agents);
        SendHandoffs(wakeups.TakeHandoffs(), now);

        var fetchWanted = fetchAll || _fetchAgents.Count > 0;
        var budget = Options.MaxInFlight - InFlight;
        int[] held = fetchWanted ? [.. partitions.Held.Values.Where(h => h.IsPublishable(now)).Select(h => h.Id)] : [];
        var fetch = fetchWanted && broker.IsOpen && budget > 0 && held.Length > 0 && partitions.Count > 0;
        // Kept asked for until a read takes it: wanted but not possible now (no broker, no budget), or a failed progress
        // write below, and the next round reads (the agents wait in _fetchAgents).
        _refetch = fetchAll;
        await RecordAsync(fetch, cancellationToken);
        if (!fetch)
        {
            await RecordStuckAsync(cancellationToken);
            return false;
        }

        // Both wanted: they take turns, so neither a chain of full reads nor a stream of named agents holds the other back.
        var full = fetchAll && (_fetchAgents.Count == 0 || _lastFetchNamed);
        _refetch = fetchAll && !full;
        _lastFetchNamed = !full;
        int[]? only = full ? null : [.. _fetchAgents];
        if (only is not null)
        {
            _fetchAgents.Clear();
        }
        else if (_fetchAllFrom == 0)
        {
            _fetchedAllAt = Stopwatch.GetTimestamp(); // a new pass
        }

        var more = false;
        var done = false;
        try
        {
            List<OutboxRow> rows = [];
            await using (var command = dataSource.CreateBatch())
            {
                command.BatchCommands.Add(FetchCommand(held, budget, now, only));
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    rows.Add(new OutboxRow(reader.GetInt64(1), new OutboxEvent(
                        reader.GetGuid(3), reader.GetInt32(0), reader.GetInt64(2), reader.GetString(4), reader.GetString(5),
                        reader.IsDBNull(6) ? null : reader.GetFieldValue<DateTimeOffset>(6), reader.GetFieldValue<DateTimeOffset>(7))));
                }
            }

            var sent = Send(rows, now);
            // Full budget or an agent's cap reached: more is waiting. A full read goes on from its last agent (whose later
            // events may be what the budget cut off; the ones sent are behind its lane's cursor).
            more = rows.Count >= budget || sent.CappedAgents > 0;
            if (only is null)
            {
                _fetchAllFrom = more && rows.Count > 0 ? rows[^1].Event.AgentId : 0;
            }

            await RecordStuckAsync(cancellationToken);
            ForgetIdle();
            done = true;
        }
        finally
        {
            // Not finished, or more to read: the same read again (a failed full read goes on from where it was).
            if (!done || more)
            {
                if (only is null)
                {
                    _refetch = true;
                }
                else
                {
                    _fetchAgents.UnionWith(only);
                }
            }
        }

        return more;
    }

    /// <summary>
    /// Records the confirmed progress every <see cref="RecordInterval"/>, in the background: sending goes on while it is
    /// written (it only decides what is published again after a fault, so it need not hold anything up), and what it
    /// found is applied by a later round. <paramref name="now"/> forces it (a fetch is about to start, or stopping).
    /// </summary>
    private async Task RecordAsync(bool now, CancellationToken cancellationToken)
    {
        if (_recording is { IsCompleted: true } done)
        {
            _recording = null;
            var (lanes, recorded) = await done;
            ApplyRecorded(lanes, recorded);
        }

        // Not sooner when everything is confirmed: at a moderate rate the window empties between two pushes, and recording
        // each time cost a statement (and a round trip) per push.
        var due = now || Stopwatch.GetElapsedTime(_recordedAt) >= RecordInterval;
        _recordPending = !due || _recording is not null;
        if (!due || _recording is not null)
        {
            return;
        }

        var record = _lanes.Values.Where(l => l.Confirmed > l.Recorded).OrderBy(l => l.AgentId).ToList();
        if (record.Count == 0)
        {
            return;
        }

        _recordedAt = Stopwatch.GetTimestamp();
        var agents = record.Select(l => l.AgentId).ToArray();
        var confirmed = record.Select(l => l.Confirmed).ToArray();
        var lanePartitions = record.Select(l => l.Partition).ToArray();
        var epochs = record.Select(l => l.Epoch).ToArray();
        _recordPending = true;
        _recording = WriteProgressAsync(record, agents, confirmed, lanePartitions, epochs, cancellationToken);
    }

    private async Task<(List<AgentLane> Lanes, Dictionary<int, long> Recorded)> WriteProgressAsync(
        List<AgentLane> lanes, int[] agents, long[] confirmed, int[] lanePartitions, long[] epochs, CancellationToken cancellationToken)
    {
        var recorded = new Dictionary<int, long>();
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(new NpgsqlBatchCommand(RecordSettingsSql));
            batch.BatchCommands.Add(new NpgsqlBatchCommand(RecordSql)
            {
                Parameters =
                {
                    IntArray(agents),
                    new NpgsqlParameter<long[]> { TypedValue = confirmed },
                    IntArray(lanePartitions),
                    new NpgsqlParameter<long[]> { TypedValue = epochs },
                    new NpgsqlParameter<string> { TypedValue = InstanceId },
                },
            });
            // Prepared once per physical connection (Npgsql keeps it across pool returns), like the group append.
            await batch.PrepareAsync(cancellationToken);
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                recorded[reader.GetInt32(0)] = reader.GetInt64(1);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Nothing recorded this time: the next one writes the same and more.
            LogRoundFailed(e.Message);
        }
        finally
        {
            wakeups.Wake();
        }

        return (lanes, recorded);
    }

    private NpgsqlBatchCommand FetchCommand(int[] held, int budget, long now, int[]? only)
    {
        // Only the lanes whose cursor says more than the database does: events sent past the recorded progress, or a pause
        // after failures (left out until its time comes). The others' published_sequence is already their cursor, so the
        // arrays stay as small as what is in flight, whatever the number of agents.
        List<int> agents = [];
        List<long> cursors = [];
        foreach (var lane in _lanes.Values)
        {
            if (lane.RetryAt > now || lane.Sent > lane.Recorded)
            {
                agents.Add(lane.AgentId);
                cursors.Add(lane.RetryAt > now ? long.MaxValue : lane.Sent);
            }
        }

        var command = new NpgsqlBatchCommand(only is null ? FetchAllSql : FetchAgentsSql)
        {
            Parameters =
            {
                IntArray([.. agents]),
                new NpgsqlParameter<long[]> { TypedValue = [.. cursors] },
                new NpgsqlParameter<int> { TypedValue = Options.MaxEventsPerAgent },
                new NpgsqlParameter<int> { TypedValue = partitions.Count },
                IntArray(held),
                new NpgsqlParameter<int> { TypedValue = budget },
            },
        };
        command.Parameters.Add(only is null ? new NpgsqlParameter<int> { TypedValue = _fetchAllFrom } : IntArray(only));
        return command;
    }

    private (int Sent, int CappedAgents) Send(List<OutboxRow> rows, long now)
    {
        var sent = 0;
        var perAgent = new Dictionary<int, int>();
        // Row order within an agent is the lateral's ORDER BY; sorting here only guards the contiguity check.
        foreach (var row in rows.OrderBy(r => r.Event.AgentId).ThenBy(r => r.Event.Sequence))
        {
            if (TrySend(row.Event, now, row.Published))
            {
                sent++;
                perAgent[row.Event.AgentId] = perAgent.GetValueOrDefault(row.Event.AgentId) + 1;
            }
        }

        metrics.Sent(sent, readBack: true);
        return (sent, perAgent.Values.Count(n => n >= Options.MaxEventsPerAgent));
    }

    /// <summary>
    /// Sends what was committed here, in commit order; what finds the confirm window full waits in memory for room (up to
    /// 4 × <see cref="OutboxOptions.MaxQueued"/> events), ahead of anything read from the database. The agents of anything that
    /// could not be sent or kept are read back.
    /// </summary>
    private void SendHandoffs(List<CommittedPush> pushes, long now)
    {
        var handled = _queued.Count; // queued before, plus what is taken now
        foreach (var push in pushes)
        {
            handled += push.StoredContents.Length;
            foreach (var e in push.Events())
            {
                if (_queued.Count < Options.MaxQueued * QueueCapFactor)
                {
                    _queued.Enqueue(e);
                    if (_lanes.TryGetValue(e.AgentId, out var lane))
                    {
                        lane.QueuedUpTo = Math.Max(lane.QueuedUpTo, e.Sequence);
                    }
                }
                else
                {
                    _fetchAgents.Add(e.AgentId); // beyond the bound: read back once there is room
                }
            }
        }

        var sent = 0;
        while (_queued.TryPeek(out var next) && InFlight < Options.MaxInFlight)
        {
            _queued.Dequeue();
            // Without a lane the agent's published sequence is unknown: the database tells.
            if (TrySend(next, now, published: null))
            {
                sent++;
            }
            else
            {
                _fetchAgents.Add(next.AgentId);
            }
        }

        backpressure.Removed(handled - _queued.Count);
        metrics.Sent(sent, readBack: false);
    }

    /// <summary>
    /// Sends <paramref name="e"/> if it is its agent's next event and this instance may publish it now. Anything else is
    /// left to a read from the database (already sent, or not the next one: a row cut short, a handoff out of order).
    /// </summary>
    private bool TrySend(OutboxEvent e, long now, long? published)
    {
        var envelope = broker.Envelope;
        var partition = partitions.PartitionOf(e.AgentId);
        if (envelope is null || !broker.IsOpen || !partitions.Held.TryGetValue(partition, out var held) || !held.IsPublishable(now))
        {
            return false;
        }

        if (!_lanes.TryGetValue(e.AgentId, out var lane))
        {
            if (published is not { } from)
            {
                return false;
            }

            lane = new AgentLane(e.AgentId, partition, held.Epoch, from);
            _lanes[e.AgentId] = lane;
        }

        if (e.Sequence <= lane.Sent)
        {
            return true; // already on its way
        }

        if (e.Sequence != lane.Sent + 1 || lane.RetryAt > now || lane.Epoch != held.Epoch || InFlight >= Options.MaxInFlight)
        {
            return false;
        }

        lane.MarkSent(e.Sequence);
        Interlocked.Increment(ref _inFlight);
        var sentAt = DateTimeOffset.UtcNow;
        broker.Send(new PublishItem
        {
            AgentId = e.AgentId,
            Sequence = e.Sequence,
            Generation = lane.Generation,
            MessageId = e.EventId.ToString(),
            Exchange = AgentEventTopology.ExchangeName,
            RoutingKey = AgentEventTopology.RoutingKey(e.EventType, e.AgentId),
            Body = envelope.Write(e, sentAt),
            Mandatory = Options.KeepUnrouted,
            ValidUntil = held.ValidUntil,
        });
        metrics.SendDelay(sentAt - e.ReceivedAt);
        return true;
    }

    /// <summary>Applies the outcomes the broker reported since the last round; returns how many events were newly confirmed.</summary>
    private int Settle()
    {
        var published = 0;
        var now = Stopwatch.GetTimestamp();
        while (_outcomes.TryDequeue(out var outcome))
        {
            var (item, result, reason) = outcome;
            Interlocked.Decrement(ref _inFlight);
            if (!_lanes.TryGetValue(item.AgentId, out var lane) || item.Generation != lane.Generation)
            {
                continue; // An outcome of a generation already started over.
            }

            lane.InFlight--;
            switch (result)
            {
                case PublishResult.Confirmed:
                    metrics.ConfirmDuration(Stopwatch.GetElapsedTime(item.SentAt, item.ConfirmedAt));
                    if (item.IsDivert)
                    {
                        metrics.Unrouted();
                    }

                    published += lane.MarkConfirmed(item.Sequence);
                    break;
                case PublishResult.Returned when Options.KeepUnrouted && !item.IsDivert
                                                 && partitions.Held.TryGetValue(lane.Partition, out var holding) && holding.Epoch == lane.Epoch:
                    // No queue took it: keep it in the unrouted queue; the event counts as published once that is confirmed.
                    lane.InFlight++;
                    Interlocked.Increment(ref _inFlight);
                    broker.Send(new PublishItem
                    {
                        AgentId = item.AgentId,
                        Sequence = item.Sequence,
                        Generation = item.Generation,
                        MessageId = item.MessageId,
                        Exchange = "",
                        RoutingKey = Options.UnroutedQueue,
                        Body = item.Body,
                        Mandatory = false,
                        IsDivert = true,
                        ValidUntil = holding.ValidUntil,
                    });
                    break;
                case PublishResult.Returned when !Options.KeepUnrouted || item.IsDivert:
                    published += lane.MarkConfirmed(item.Sequence);
                    break;
                default:
                    // Returned while the partition is no longer held lands here too: the next owner sends it again.
                    var ownFault = result == PublishResult.Nacked || item.Suspect;
                    lane.Fail(reason ?? result.ToString(), ownFault, now, lane.Stuck ? Options.MaxRetryDelay * StuckRetryFactor : Backoff(lane.Failures + 1));
                    _refetch = true;
                    _earliestRetry = Math.Min(_earliestRetry, lane.RetryAt > now ? lane.RetryAt : long.MaxValue);
                    metrics.PublishFailed(result == PublishResult.Nacked ? "nack" : ownFault ? "channel-closed" : "connection");
                    if (ownFault && lane.Failures >= Options.StuckAfterFailures && !lane.Stuck)
                    {
                        lane.Stuck = true;
                        _newlyStuck.Add(lane);
                        LogAgentStuck(lane.AgentId, lane.Confirmed + 1, lane.Failures, lane.LastError ?? "");
                    }

                    break;
            }
        }

        // For the lease round (draining partitions are released once settled); it runs every few seconds.
        if (Stopwatch.GetElapsedTime(_unsettledAt) > TimeSpan.FromMilliseconds(100))
        {
            _unsettled = [.. _lanes.Values.Where(l => !l.Settled).Select(l => l.Partition)];
            _unsettledAt = Stopwatch.GetTimestamp();
        }

        return published;
    }

    private void ApplyRecorded(List<AgentLane> record, Dictionary<int, long> recorded)
    {
        foreach (var lane in record)
        {
            if (recorded.TryGetValue(lane.AgentId, out var sequence))
            {
                lane.Recorded = Math.Max(lane.Recorded, sequence); // and its publish_error cleared
            }
            else if (partitions.Held.TryGetValue(lane.Partition, out var held) && held.Epoch == lane.Epoch)
            {
                // Its stream row was busy with a push (skipped), or the lease round has yet to learn of a takeover: the
                // next round tries again, and a lost partition's lanes are dropped then.
            }
            else
            {
                metrics.ProgressFenced();
                LogFenced(lane.AgentId, lane.Partition, lane.Epoch);
                if (_lanes.TryGetValue(lane.AgentId, out var current) && ReferenceEquals(current, lane))
                {
                    _lanes.Remove(lane.AgentId);
                }
            }
        }
    }

    /// <summary>Writes <c>publish_error</c> for the agents that became stuck since the last round (once each time).</summary>
    private async Task RecordStuckAsync(CancellationToken cancellationToken)
    {
        while (_newlyStuck.Count > 0)
        {
            var lane = _newlyStuck[^1];
            if (!lane.Stuck || !_lanes.TryGetValue(lane.AgentId, out var current) || !ReferenceEquals(current, lane))
            {
                _newlyStuck.RemoveAt(_newlyStuck.Count - 1);
                continue;
            }

            await using var command = dataSource.CreateCommand(StuckSql);
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = lane.AgentId });
            command.Parameters.Add(new NpgsqlParameter<string>
            {
                TypedValue = $"event {lane.Confirmed + 1} failed {lane.Failures} times: {lane.LastError}",
            });
            await command.ExecuteNonQueryAsync(cancellationToken);
            _newlyStuck.RemoveAt(_newlyStuck.Count - 1);
        }
    }

    /// <summary>Lanes whose partition this instance no longer holds (lost, handed back, or under another epoch) are dropped.</summary>
    private void DropLanesNotHeld()
    {
        var held = partitions.Held;
        if (ReferenceEquals(held, _lanesCheckedAgainst))
        {
            return; // the lease round publishes a new map whenever anything changed
        }

        _lanesCheckedAgainst = held;
        foreach (var lane in _lanes.Values.ToList())
        {
            if (!held.TryGetValue(lane.Partition, out var partition) || partition.Epoch != lane.Epoch)
            {
                _lanes.Remove(lane.AgentId);
            }
        }
    }

    /// <summary>
    /// Lanes are kept while there are at most <see cref="MaxLanes"/>: an agent with a lane has its next push sent as handed
    /// over; one without is read back once to learn its progress. Past that, the idle ones are forgotten.
    /// </summary>
    private void ForgetIdle()
    {
        if (_lanes.Count < MaxLanes)
        {
            return;
        }

        foreach (var lane in _lanes.Values.Where(l => l.Idle).ToList())
        {
            _lanes.Remove(lane.AgentId);
        }
    }

    private async Task ConnectAsync(long now, CancellationToken cancellationToken)
    {
        if (now < _nextConnectAt)
        {
            return;
        }

        try
        {
            await broker.OpenAsync(cancellationToken);
            _connectFailures = 0;
            // Everything in flight on the old connection failed: each agent starts again from its first unconfirmed event.
            Settle();
            _refetch = true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (_connectFailures++ == 0)
            {
                LogConnectFailed(e.GetBaseException().Message);
            }

            // At most ConnectRetryCap apart: an attempt costs one TCP connect, and a broker back from an outage is used within it.
            var wait = Backoff(_connectFailures) < ConnectRetryCap ? Backoff(_connectFailures) : ConnectRetryCap;
            _nextConnectAt = now + (long)(wait.TotalSeconds * Stopwatch.Frequency);
        }
    }

    private TimeSpan NextWait()
    {
        var now = Stopwatch.GetTimestamp();
        var wait = _recordPending ? RecordInterval : Options.PollInterval;
        if (_earliestRetry != long.MaxValue)
        {
            if (_earliestRetry <= now)
            {
                // An agent's pause is over: read its events again, and find the next pause to end.
                _refetch = true;
                wait = TimeSpan.Zero;
                _earliestRetry = _lanes.Values.Select(l => l.RetryAt).Where(t => t > now).DefaultIfEmpty(long.MaxValue).Min();
            }
            else
            {
                var until = Stopwatch.GetElapsedTime(now, _earliestRetry);
                wait = until < wait ? until : wait;
            }
        }

        if (!broker.IsOpen && _nextConnectAt > now)
        {
            var until = Stopwatch.GetElapsedTime(now, _nextConnectAt);
            wait = until < wait ? until : wait;
        }

        return wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait;
    }

    private TimeSpan Backoff(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(Options.MaxRetryDelay.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures - 1, 16))));

    private static NpgsqlParameter<int[]> IntArray(int[] values) => new() { TypedValue = values, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer };

    private sealed record OutboxRow(long Published, OutboxEvent Event);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox round failed ({Reason}); trying again")]
    private partial void LogRoundFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox lease round failed ({Reason}); publishing stops when the leases run out unless the next round succeeds")]
    private partial void LogLeaseFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reach RabbitMQ ({Reason}); events wait in PostgreSQL and are published once it answers")]
    private partial void LogConnectFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down before the held partitions were published ({Reason}); the next owner publishes the rest")]
    private partial void LogFlushIncomplete(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Progress of agent {AgentId} refused: partition {Partition} is no longer held under epoch {Epoch} (another instance took it over)")]
    private partial void LogFenced(int agentId, int partition, long epoch);

    [LoggerMessage(Level = LogLevel.Error, Message = "Agent {AgentId}'s event {Sequence} cannot be published ({Failures} attempts, last: {Reason}); its later events wait, the other agents go on")]
    private partial void LogAgentStuck(int agentId, long sequence, int failures, string reason);
}
