using System.Data;
using System.Diagnostics;
using CallbackHub.Callbacks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Agents;

/// <summary>
/// Tells <see cref="SessionTokens"/> which sessions' tokens changed, in any instance (or by hand), since it last asked: every
/// <see cref="CallbackOptions.EffectiveSessionChangePollInterval"/>, one indexed query that reads only those rows. While it
/// keeps up, what an instance knows about an agent's tokens is never read again on a push, so a push costs one round trip
/// whether an agent pushes every second or every minute (otherwise every agent's tokens are read again every
/// <see cref="CallbackOptions.SessionCacheTtl"/>: at 50,000 agents, nearly every push would wait for a second query).
/// <para>
/// Each change of a session's tokens carries the id of the transaction that made it (a trigger sets
/// <c>tokens_changed_xid</c>). A query runs in a snapshot; the next one reads the rows changed by every transaction that
/// snapshot could not see: those still running when it was taken (its in-progress list) and those begun after it (from its
/// xmax). A transaction that committed late, after a later id was already seen, is therefore never skipped, which an
/// increasing sequence number could not promise.
/// </para>
/// </summary>
internal sealed partial class TokenChangeFeed(
    NpgsqlDataSource dataSource, SessionTokens tokens, IOptions<CallbackOptions> options, ILogger<TokenChangeFeed> logger) : BackgroundService
{
    // REPEATABLE READ: both statements see the snapshot the first one reports (taken by the transaction's first statement).
    private const string SnapshotSql = """
        SELECT pg_snapshot_xmax(s)::text::bigint, ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x)
        FROM pg_current_snapshot() AS s
        """;

    internal const string ChangedSql = $"""
        SELECT agent_id, {SessionTokens.Columns}
        FROM agent_sessions WHERE tokens_changed_xid >= $1 OR tokens_changed_xid = ANY($2)
        """;

    // What the last snapshot could not see: transactions from this id on, and these (in progress then).
    private long _from = -1;
    private long[] _inProgress = [];
    private bool _failing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (o.SessionCacheTtl <= TimeSpan.Zero)
        {
            // Nothing is cached: every push reads its agent's tokens.
            return;
        }

        // A poll that cannot finish well inside the TTL is given up, and tried again: past the TTL without one, every push
        // reads its agent's tokens again.
        var timeout = TimeSpan.FromTicks(Math.Min(o.StoreTimeout.Ticks, o.SessionCacheTtl.Ticks / 2));
        // Real time, whatever clock the service runs on: this is how stale the cache may be.
        using var timer = new PeriodicTimer(o.EffectiveSessionChangePollInterval);
        // A connection of its own, held (like the outbox's LISTEN): a poll never waits behind pushes for one of the pool's
        // connections, which under load would stop the feed just when losing it costs most.
        NpgsqlConnection? connection = null;
        try
        {
            do
            {
                try
                {
                    using var limit = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                    limit.CancelAfter(timeout);
                    connection ??= await dataSource.OpenConnectionAsync(limit.Token);
                    await PollAsync(connection, limit.Token);
                    if (_failing)
                    {
                        _failing = false;
                        LogRecovered();
                    }
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    // Until it works again, pushes read their agent's tokens once per SessionCacheTtl, as without the feed.
                    if (connection is not null)
                    {
                        await connection.DisposeAsync();
                        connection = null;
                    }

                    if (!_failing)
                    {
                        _failing = true;
                        LogFailing(e, o.SessionCacheTtl);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>Reads what changed since the last poll and hands it to <see cref="SessionTokens"/>.</summary>
    private async Task PollAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var startedAt = Stopwatch.GetTimestamp();
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        // One round trip: the rows changed since the last snapshot, and this snapshot (where the next poll starts). The
        // first poll only takes the snapshot.
        await using var batch = new NpgsqlBatch(connection, transaction) { BatchCommands = { new NpgsqlBatchCommand(SnapshotSql) } };
        if (_from >= 0)
        {
            var command = new NpgsqlBatchCommand(ChangedSql);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = _from });
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = _inProgress });
            batch.BatchCommands.Add(command);
        }

        long from;
        long[] inProgress;
        var changed = new List<SessionTokens.Stored>();
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            from = reader.GetInt64(0);
            inProgress = reader.GetFieldValue<long[]>(1);
            if (await reader.NextResultAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    changed.Add(SessionTokens.Stored.Read(reader, reader.GetInt32(0), first: 1));
                }
            }
        }

        await transaction.CommitAsync(cancellationToken);
        // The first poll only sets where the next one starts: what was read before it is not trusted for longer than the TTL.
        tokens.Changed(changed, startedAt);
        (_from, _inProgress) = (from, inProgress);
        if (changed.Count > 0)
        {
            LogChanged(changed.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Tokens of {Count} sessions changed")]
    private partial void LogChanged(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading which sessions' tokens changed failed; until it works again, every agent's tokens are read again every Callbacks__SessionCacheTtl ({Ttl})")]
    private partial void LogFailing(Exception exception, TimeSpan ttl);

    [LoggerMessage(Level = LogLevel.Information, Message = "Reading which sessions' tokens changed works again")]
    private partial void LogRecovered();
}
