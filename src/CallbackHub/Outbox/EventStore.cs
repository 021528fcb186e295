using System.Diagnostics;
using System.Threading.Channels;
using CallbackHub.Callbacks;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace CallbackHub.Outbox;

/// <summary>What became of a push: how many of its events were stored, and how many were recognised as already stored.</summary>
internal readonly record struct AppendOutcome(int Stored, int AlreadyStored)
{
    public bool IsDuplicate => Stored == 0;
}

/// <summary>
/// The write side of the outbox: appends pushes to <c>agent_events</c>. Pushes that arrive together are committed
/// together (a group commit: one transaction, one statement, two round trips, one WAL flush for up to
/// <see cref="OutboxOptions.MaxPushesPerCommit"/> pushes) by <see cref="OutboxOptions.CommitWriters"/> writers. The statement
/// takes the agents' stream row locks (so an agent's pushes are numbered in commit order, gap-free — arrival order, as the
/// gateway sends an agent's next push only after this one's answer), skips each push's events that are a re-send of its
/// agent's last accepted batch (the whole batch, when it is that batch again; its first events, when it is that batch with
/// newer events appended), and inserts the rest. Nothing here updates an event row. A group that fails for a reason other
/// than the connection is committed again push by push, so one push's bad row never fails the others.
/// </summary>
internal sealed partial class EventStore : IAsyncDisposable
{
    // How many of a push's first events were stored already. $7 holds one fingerprint per prefix of each push, the pushes'
    // one after another (the push's k-th, which covers its first k events, at v.off + k; its whole batch's, the one every
    // version of CallbackHub remembered, at v.off + v.n). Within the window: all of them when the batch is the last accepted
    // one again; its first last_batch_count when it starts with that batch and those events carry eventGenTime (v.timed =
    // how many leading events do) — without it a genuinely new batch that repeats the last one's events (Ready, then Ready
    // and Busy) would lose them, and a duplicate beats a loss.
    private const string SkipSql = """
        CASE WHEN s.last_batch_at IS NULL OR s.last_batch_at <= v.window_start THEN 0
             WHEN s.last_batch_hash = ($7::bytea[])[v.off + v.n] THEN v.n
             WHEN s.last_batch_count BETWEEN 1 AND v.timed AND s.last_batch_hash = ($7::bytea[])[v.off + s.last_batch_count] THEN s.last_batch_count
             ELSE 0 END
        """;

    // A whole group in one statement: one row per push (v, in agent order, one push per agent) with its events as arrays,
    // one element per event ($8 names the push by its place in v). The stream rows are locked in agent order first
    // (locked: ORDER BY with FOR UPDATE locks in that order), so two groups never wait on each other in a cycle whatever
    // plan the update gets. Both reach the rows through "agent_id = ANY($1)", an index scan of the key in every plan: the
    // generic plan of a join with the unnested arrays scanned the whole table instead (OutboxPlanTests). Rows come back per
    // push (agent, how many leading events were skipped) and per stored event (agent, sequence, content as stored); a push
    // without a row has no stream row yet. The skip is kept in the stream row because RETURNING sees only new values.
    internal const string AppendSql = $"""
        WITH v AS (
            SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::timestamptz[], $6::timestamptz[])
                WITH ORDINALITY AS v(agent_id, n, off, timed, received_at, window_start, push)
        ),
        locked AS MATERIALIZED (
            SELECT agent_id FROM agent_streams WHERE agent_id = ANY($1::int[]) ORDER BY agent_id FOR UPDATE
        ),
        stream AS (
            UPDATE agent_streams s
            SET last_batch_skipped = {SkipSql},
                last_sequence = s.last_sequence + v.n - {SkipSql},
                last_batch_hash = ($7::bytea[])[v.off + v.n],
                last_batch_count = v.n,
                last_batch_at = v.received_at
            FROM v JOIN locked l ON l.agent_id = v.agent_id
            WHERE s.agent_id = v.agent_id AND s.agent_id = ANY($1::int[])
            RETURNING s.agent_id, v.push, v.n, v.received_at, s.last_sequence, s.last_batch_skipped
        ),
        inserted AS (
            INSERT INTO agent_events (event_id, agent_id, sequence, event_type, content, event_gen_time, received_at)
            SELECT e.event_id, st.agent_id, st.last_sequence - st.n + e.ord, e.event_type, e.content::jsonb, e.gen, st.received_at
            FROM unnest($8::int[], $9::int[], $10::text[], $11::text[], $12::timestamptz[], $13::uuid[])
                AS e(push, ord, event_type, content, gen, event_id)
            JOIN stream st ON st.push = e.push
            WHERE e.ord > st.last_batch_skipped
            RETURNING agent_id, sequence, content::text
        )
        SELECT agent_id, last_batch_skipped, NULL::bigint, NULL::text FROM stream
        UNION ALL
        SELECT agent_id, NULL, sequence, content FROM inserted
        """;

    // A stream row made late (after a sign-in cut short, or in a database restored without it) numbers on from the agent's
    // stored events, and leaves them all to be published (again, at worst: never lost).
    private const string NewStreamSql = "SELECT $1, coalesce(max(sequence), 0) FROM agent_events WHERE agent_id = $1";

    private const string EnsureStreamSql = $"INSERT INTO agent_streams (agent_id, last_sequence) {NewStreamSql} ON CONFLICT DO NOTHING";

    private const string StartSessionSql = $"""
        INSERT INTO agent_streams (agent_id, last_sequence) {NewStreamSql}
        ON CONFLICT (agent_id) DO UPDATE SET last_batch_hash = NULL, last_batch_count = NULL, last_batch_at = NULL
        """;

    // For the group's transaction only. The append's generic plan is used every time: left to choose, PostgreSQL found
    // its custom plans (which know the arrays' lengths) cheaper and planned the statement anew for every group, about a
    // millisecond each, which at half load cost more than the execution. The generic plan reads the stream rows by key
    // (OutboxPlanTests).
    private const string TransactionSettingsSql =
        "SELECT set_config('lock_timeout', $1, true), set_config('plan_cache_mode', 'force_generic_plan', true)";

    // The lock limit of each push of a group whose statement waited the full limit, committed one by one (see CommitAsync).
    private static readonly TimeSpan RetryLockTimeout = TimeSpan.FromMilliseconds(250);

    // Callers stop waiting at their own deadline (Callbacks__StoreTimeout); this bounds a commit stuck on a dead connection.
    private static readonly TimeSpan CommitTimeout = TimeSpan.FromSeconds(30);

    private readonly NpgsqlDataSource _dataSource;
    private readonly OutboxWakeups _wakeups;
    private readonly OutboxBackpressure _backpressure;
    private readonly IOptions<OutboxOptions> _options;
    private readonly ILogger<EventStore> _logger;
    private readonly Channel<PendingAppend> _queue = Channel.CreateUnbounded<PendingAppend>(new UnboundedChannelOptions { SingleReader = false });
    private readonly CancellationTokenSource _stopping = new();
    private readonly AgentArrivalOrder _arrivals = new();
    private readonly Task[] _writers;

    public EventStore(NpgsqlDataSource dataSource, OutboxWakeups wakeups, OutboxBackpressure backpressure, IOptions<OutboxOptions> options, ILogger<EventStore> logger)
    {
        _dataSource = dataSource;
        _wakeups = wakeups;
        _backpressure = backpressure;
        _options = options;
        _logger = logger;
        _writers = [.. Enumerable.Range(0, options.Value.CommitWriters).Select(_ => Task.Run(WriteAsync))];
    }

    /// <summary>
    /// Stores the push; completes once its new events are committed (or it is recognised as a re-send). The caller stops
    /// waiting when <paramref name="cancellationToken"/> fires, and a push not yet sent is then dropped. Whatever the token
    /// says, the push is never committed once <paramref name="commitWithin"/> has passed since this call (on the monotonic
    /// clock: after a freeze the writers may run before the timers that cancel the token): a copy committed that late
    /// could land after the gateway's re-send of it and the agent's next push.
    /// </summary>
    public async Task<AppendOutcome> AppendAsync(
        PushBatch batch, DateTimeOffset receivedAt, RetryRule retries, TimeSpan commitWithin, CancellationToken cancellationToken)
    {
        // PostgreSQL keeps microseconds: the time is cut to what is stored, so a message says the same as the row.
        receivedAt = new DateTimeOffset(receivedAt.UtcTicks - (receivedAt.UtcTicks % 10), TimeSpan.Zero);
        var pending = new PendingAppend(batch, receivedAt, retries, Stopwatch.GetTimestamp() + (long)(commitWithin.TotalSeconds * Stopwatch.Frequency), cancellationToken);

        // After the agent's pushes that reached this store before it (nearly always none): see AgentArrivalOrder.
        var before = _arrivals.Enter(batch.AgentId, pending.Outcome.Task);
        var queued = false;
        OutboxBackpressure.Entry entry = default;
        try
        {
            if (!before.IsCompleted)
            {
                await before.WaitAsync(cancellationToken);
            }

            // While this instance's publisher is behind, a push it would publish waits its turn (briefly) before it is stored.
            entry = await _backpressure.EnterAsync(batch.AgentId, batch.Events.Count, cancellationToken);
            if (!_queue.Writer.TryWrite(pending))
            {
                throw new InvalidOperationException("The event store is shutting down.");
            }

            queued = true;
        }
        finally
        {
            if (!queued)
            {
                // Never sent: the agent's next push need not wait for it (it still waits for the ones before).
                pending.Outcome.TrySetCanceled(cancellationToken);
                entry.Dispose();
            }
        }

        // Once taken into a commit the push's fate is the commit's: waiting ends at the caller's deadline, but a commit that
        // then succeeds within the push's commit deadline is kept, and the gateway's re-send of it is recognised as a
        // duplicate.
        using (entry)
        {
            return await pending.Outcome.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// A new gateway session begins: its first batch is never a re-send of the last session's (an idle agent signed
    /// in again pushes the same AgentOther_InService, AgentState_Ready as last time — without eventGenTime on older
    /// gateways, byte for byte).
    /// </summary>
    public async Task StartSessionAsync(int agentId, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(StartSessionSql);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<bool> EnsureStreamAsync(int agentId, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(EnsureStreamSql);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private async Task WriteAsync()
    {
        var group = new List<PendingAppend>();
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token))
            {
                group.Clear();
                while (group.Count < _options.Value.MaxPushesPerCommit && reader.TryRead(out var pending))
                {
                    if (pending.CallerGaveUp)
                    {
                        pending.Outcome.TrySetCanceled(pending.CallerToken);
                        continue;
                    }

                    group.Add(pending);
                }

                if (group.Count > 0)
                {
                    await CommitAsync(group, _options.Value.AppendLockTimeout);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    /// <param name="lockTimeout">The longest wait of the group's statement for a lock (0: none).</param>
    private async Task CommitAsync(List<PendingAppend> group, TimeSpan lockTimeout)
    {
        if (group.Count > 1 && RepeatsAnAgent(group))
        {
            // Never the case (an agent's pushes pass the store one at a time, see AgentArrivalOrder), but the statement
            // takes one push per agent: these go one by one, in arrival order.
            await CommitEachAsync(group, lockTimeout);
            return;
        }

        try
        {
            await CommitGroupAsync(group, lockTimeout);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            if (group.Count == 1)
            {
                LogLockWait(group[0].Batch.AgentId, lockTimeout);
                group[0].Outcome.TrySetException(e);
                return;
            }

            // A push waited past the limit for a lock: its agent's stream row, held by another transaction (one of a frozen
            // or cut-off instance, until it is ended), or the table's (a migration, DDL). The statement does not say whose:
            // each push is committed alone now, waiting only briefly, so the blocked ones are refused and the others stored.
            // Briefly, because the agents of a frozen instance tend to arrive together, and each would cost the full limit.
            LogGroupSplit(group.Count, e.Message);
            await CommitEachAsync(group, lockTimeout < RetryLockTimeout ? lockTimeout : RetryLockTimeout);
        }
        catch (Exception e) when (group.Count > 1 && e is PostgresException { IsTransient: false })
        {
            // Something in one push broke the whole statement: commit each alone, so only that push is refused.
            LogGroupSplit(group.Count, e.Message);
            await CommitEachAsync(group, lockTimeout);
        }
        catch (Exception e)
        {
            foreach (var pending in group)
            {
                pending.Outcome.TrySetException(e);
            }
        }
    }

    private async Task CommitEachAsync(List<PendingAppend> group, TimeSpan lockTimeout)
    {
        foreach (var pending in group)
        {
            await CommitAsync([pending], lockTimeout);
        }
    }

    private static bool RepeatsAnAgent(List<PendingAppend> group)
    {
        var agents = new HashSet<int>(group.Count);
        return group.Any(p => !agents.Add(p.Batch.AgentId));
    }

    private async Task CommitGroupAsync(IReadOnlyList<PendingAppend> group, TimeSpan lockTimeout)
    {
        // In agent order: the results are found by agent (one push per agent), and the statement reads the pushes in this order.
        IReadOnlyList<PendingAppend> ordered = group.Count == 1 ? group : [.. group.OrderBy(p => p.Batch.AgentId)];
        // A push already settled is never sent again: when a group is committed push by push after an error that came once
        // its commit had succeeded (making a missing stream row), the pushes answered by that commit are skipped.
        if ((ordered = Unsettled(ordered)).Count == 0)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(CommitTimeout);
        // What each push got: its first new sequence (its events from the skipped ones on are numbered from there, in order),
        // or nothing at all when the agent has no stream row. The content comes back as PostgreSQL stores it (jsonb's own
        // spelling), so a message is the same byte for byte whether it is sent from here or read back from the table later.
        AppendResult?[] results;
        var late = false;
        await using (var connection = await _dataSource.OpenConnectionAsync(timeout.Token))
        {
            // Waiting for a connection can take a while (and a freeze can fall in it): a push whose caller has given up by
            // now is not sent.
            foreach (var gone in ordered.Where(p => p.CallerGaveUp))
            {
                gone.Outcome.TrySetCanceled(gone.CallerToken);
            }

            if ((ordered = Unsettled(ordered)).Count == 0)
            {
                return;
            }

            // BEGIN goes with the statements (one round trip), COMMIT after the check below (a second one).
            await using var transaction = await connection.BeginTransactionAsync(timeout.Token);
            await using var batch = new NpgsqlBatch(connection, transaction);
            // For this transaction only (the settings end with it); a lock timeout of 0 says "no limit" whatever the role's
            // default is.
            var setting = new NpgsqlBatchCommand(TransactionSettingsSql);
            setting.Parameters.Add(new NpgsqlParameter<string> { TypedValue = $"{(long)lockTimeout.TotalMilliseconds}ms" });
            batch.BatchCommands.Add(setting);
            batch.BatchCommands.Add(BuildAppendCommand([.. ordered.Select(p => p.Input)]));

            // Prepared once per physical connection (Npgsql keeps it across pool returns): PostgreSQL then skips parsing
            // and planning it on every group.
            await batch.PrepareAsync(timeout.Token);
            await using (var reader = await batch.ExecuteReaderAsync(timeout.Token))
            {
                results = await ReadResultsAsync(reader, ordered, timeout.Token);
            }

            // A push past its commit deadline by now (the instance froze, or the statement waited long) is not committed: it
            // was answered 503, and the gateway's re-send of it and the agent's next push may already be committed by another
            // instance. Checked with the agents' stream rows locked, so a freeze after this check cannot put the push after
            // them: they wait for this transaction. (A push whose caller merely stopped waiting is still committed; its
            // re-send is then recognised.)
            if (ordered.Any(p => p.TooLate))
            {
                await transaction.RollbackAsync(timeout.Token);
                foreach (var gone in ordered.Where(p => p.TooLate))
                {
                    gone.Outcome.TrySetCanceled(gone.CallerToken);
                }

                late = true;
            }
            else
            {
                await transaction.CommitAsync(timeout.Token);
            }
        }

        if (late)
        {
            LogRolledBackLate(ordered.Count(p => p.TooLate));
            await CommitAsync([.. Unsettled(ordered)], lockTimeout);
            return;
        }

        // Handed to the publisher before any of them is answered: the gateway sends an agent's next push only after this
        // one's answer, and that push's events must not reach the publisher before these (they would be read back instead).
        // After the commit, never inside it: a NOTIFY in the transaction would serialise commits cluster-wide.
        var committed = new List<CommittedPush>(ordered.Count);
        for (var i = 0; i < ordered.Count; i++)
        {
            if (results[i] is { Contents.Length: > 0 } result)
            {
                var pending = ordered[i];
                committed.Add(new CommittedPush(pending.Batch, result.Skipped, result.FirstSequence, pending.ReceivedAt, pending.EventIds, result.Contents));
            }
        }

        _wakeups.Committed(committed);
        for (var i = 0; i < ordered.Count; i++)
        {
            var pending = ordered[i];
            if (results[i] is { } result)
            {
                pending.Outcome.TrySetResult(new AppendOutcome(result.Contents.Length, result.Skipped));
            }
            else if (!pending.StreamEnsured)
            {
                // The agent has no stream row (sign-in did not get to make it, or the database was restored from before it):
                // make it, whoever wins the race to, and append again. Two different first pushes are then both stored.
                await EnsureStreamAsync(pending.Batch.AgentId, timeout.Token);
                pending.StreamEnsured = true;
                await CommitAsync([pending], lockTimeout);
            }
            else
            {
                pending.Outcome.TrySetException(new InvalidOperationException($"The stream row of agent {pending.Batch.AgentId} vanished while its push was stored."));
            }
        }
    }

    /// <summary>Each push's result, found by its agent: a row with the skip per push, one per stored event.</summary>
    private static async Task<AppendResult?[]> ReadResultsAsync(
        NpgsqlDataReader reader, IReadOnlyList<PendingAppend> ordered, CancellationToken cancellationToken)
    {
        // Past the lock timeout's statement.
        await reader.NextResultAsync(cancellationToken);
        var skipped = new int?[ordered.Count];
        var stored = new List<(long Sequence, string Content)>?[ordered.Count];
        while (await reader.ReadAsync(cancellationToken))
        {
            var i = IndexOf(ordered, reader.GetInt32(0));
            if (!reader.IsDBNull(1))
            {
                skipped[i] = reader.GetInt32(1);
            }
            else
            {
                (stored[i] ??= new(ordered[i].Batch.Events.Count)).Add((reader.GetInt64(2), reader.GetString(3)));
            }
        }

        var results = new AppendResult?[ordered.Count];
        for (var i = 0; i < ordered.Count; i++)
        {
            if (skipped[i] is { } skip)
            {
                results[i] = stored[i] is { Count: > 0 } events
                    ? new AppendResult(skip, events.Min(e => e.Sequence), [.. events.OrderBy(e => e.Sequence).Select(e => e.Content)])
                    : new AppendResult(skip, 0, []);
            }
        }

        return results;
    }

    /// <summary>The place of the agent's push in a group in agent order.</summary>
    private static int IndexOf(IReadOnlyList<PendingAppend> ordered, int agentId)
    {
        int low = 0, high = ordered.Count - 1;
        while (low <= high)
        {
            var middle = (low + high) >>> 1;
            var found = ordered[middle].Batch.AgentId;
            if (found == agentId)
            {
                return middle;
            }

            (low, high) = found < agentId ? (middle + 1, high) : (low, middle - 1);
        }

        throw new InvalidOperationException($"PostgreSQL answered for agent {agentId}, who has no push in the group.");
    }

    /// <summary>The pushes of the group not settled yet (the group itself when none is: nothing is copied on the hot path).</summary>
    private static IReadOnlyList<PendingAppend> Unsettled(IReadOnlyList<PendingAppend> group) =>
        group.Any(p => p.Outcome.Task.IsCompleted) ? [.. group.Where(p => !p.Outcome.Task.IsCompleted)] : group;

    /// <summary>
    /// The append statement with its parameters for a group of pushes in agent order, one per agent: per push its agent,
    /// event count, where its fingerprints start, how many leading events carry eventGenTime, its arrival and the start of
    /// its re-send window; all fingerprints one after another; and per event its push (1-based), place, type, content, time
    /// and id.
    /// </summary>
    internal static NpgsqlBatchCommand BuildAppendCommand(IReadOnlyList<AppendInput> pushes)
    {
        var eventCount = 0;
        foreach (var push in pushes)
        {
            eventCount += push.Batch.Events.Count;
        }

        var agents = new int[pushes.Count];
        var counts = new int[pushes.Count];
        var offsets = new int[pushes.Count];
        var timedCounts = new int[pushes.Count];
        var received = new DateTimeOffset[pushes.Count];
        var windowStarts = new DateTimeOffset[pushes.Count];
        var hashes = new byte[eventCount][];
        var owners = new int[eventCount];
        var places = new int[eventCount];
        var types = new string[eventCount];
        var contents = new string[eventCount];
        var generated = new DateTimeOffset?[eventCount];
        var ids = new Guid[eventCount];
        var at = 0;
        for (var p = 0; p < pushes.Count; p++)
        {
            var (batch, receivedAt, retries, eventIds) = pushes[p];
            var count = batch.Events.Count;
            Debug.Assert(batch.PrefixHashes.Length == count, "one fingerprint per prefix of the batch");
            agents[p] = batch.AgentId;
            counts[p] = count;
            offsets[p] = at;
            received[p] = receivedAt;
            windowStarts[p] = receivedAt - retries.Window;
            var timed = 0;
            while (timed < count && (retries.AppendedWithoutGenTime || batch.Events[timed].GeneratedAt is not null))
            {
                timed++;
            }

            timedCounts[p] = timed;
            for (var i = 0; i < count; i++, at++)
            {
                var e = batch.Events[i];
                hashes[at] = batch.PrefixHashes[i];
                owners[at] = p + 1;
                places[at] = i + 1;
                types[at] = e.EventType;
                contents[at] = e.ContentJson;
                generated[at] = e.GeneratedAt;
                ids[at] = eventIds[i];
            }
        }

        var append = new NpgsqlBatchCommand(AppendSql);
        append.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = agents, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = counts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = offsets, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = timedCounts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]> { TypedValue = received, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        append.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]> { TypedValue = windowStarts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        append.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = hashes, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        append.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = owners, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = places, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        append.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        append.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = contents, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        append.Parameters.Add(new NpgsqlParameter<DateTimeOffset?[]> { TypedValue = generated, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        append.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        return append;
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await Task.WhenAll(_writers).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(static _ => { }, TaskScheduler.Default);
        await _stopping.CancelAsync();
        _stopping.Dispose();
        while (_queue.Reader.TryRead(out var left))
        {
            left.Outcome.TrySetException(new InvalidOperationException("The event store shut down before the push was stored."));
        }
    }

    private sealed class PendingAppend(PushBatch batch, DateTimeOffset receivedAt, RetryRule retries, long commitBy, CancellationToken callerToken)
    {
        public PushBatch Batch { get; } = batch;
        public DateTimeOffset ReceivedAt { get; } = receivedAt;
        public RetryRule Retries { get; } = retries;
        public CancellationToken CallerToken { get; } = callerToken;

        public AppendInput Input => new(Batch, ReceivedAt, Retries, EventIds);

        // Version 7: time-ordered, and unique as made (the table has no index on them).
        public Guid[] EventIds { get; } = [.. batch.Events.Select(_ => Guid.CreateVersion7(receivedAt))];
        /// <summary>Not worth sending: the caller stopped waiting, or the commit deadline has passed.</summary>
        public bool CallerGaveUp => CallerToken.IsCancellationRequested || TooLate;

        /// <summary>Past its commit deadline (a monotonic clock: a freeze counts): it must not be committed.</summary>
        public bool TooLate => Stopwatch.GetTimestamp() >= commitBy;

        /// <summary>Set once the agent's stream row was made for this push: a second miss is an error, not a loop.</summary>
        public bool StreamEnsured { get; set; }
        public TaskCompletionSource<AppendOutcome> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The push of agent {AgentId} waited longer than {Timeout} (Outbox__AppendLockTimeout) for a lock: its stream row, held by another transaction (a frozen or cut-off instance's?), or the table's (a migration, DDL); answered 503 (the gateway sends it again)")]
    private partial void LogLockWait(int agentId, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} push(es) of a group were rolled back: they were past Callbacks__CommitWithin before the commit (answered 503; the gateway sends them again); the others are committed without them")]
    private partial void LogRolledBackLate(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A commit of {Count} pushes failed ({Reason}); committing them one by one")]
    private partial void LogGroupSplit(int count, string reason);
}

/// <summary>
/// A push as committed: its events from <see cref="Skipped"/> on (the ones before were stored by an earlier push it
/// re-sends) were numbered from <see cref="FirstSequence"/> on, in order.
/// </summary>
internal sealed record CommittedPush(
    PushBatch Batch, int Skipped, long FirstSequence, DateTimeOffset ReceivedAt, Guid[] EventIds, string[] StoredContents)
{
    public int AgentId => Batch.AgentId;

    public IEnumerable<OutboxEvent> Events() => StoredContents.Select((content, i) =>
    {
        var e = Batch.Events[Skipped + i];
        return new OutboxEvent(EventIds[Skipped + i], Batch.AgentId, FirstSequence + i, e.EventType, content, e.GeneratedAt, ReceivedAt);
    });
}

/// <summary>
/// How re-sends are recognised: within <paramref name="Window"/> of the last accepted batch; a batch that starts with it only
/// over events that carry <c>eventGenTime</c>, unless <paramref name="AppendedWithoutGenTime"/> (Callbacks__AppendedRetriesWithoutGenTime).
/// </summary>
internal readonly record struct RetryRule(TimeSpan Window, bool AppendedWithoutGenTime);

/// <summary>A push as the append statement takes it: the batch, when it arrived, how its re-sends are recognised, its events' ids.</summary>
internal readonly record struct AppendInput(PushBatch Batch, DateTimeOffset ReceivedAt, RetryRule Retries, Guid[] EventIds);

/// <summary>One append's answer from the database: how many leading events it skipped, and the ones it stored.</summary>
internal sealed record AppendResult(int Skipped, long FirstSequence, string[] Contents);
