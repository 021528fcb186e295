using System.Collections.Concurrent;
using System.Threading.Channels;
using System.Threading.RateLimiting;
using CallbackHub.Callbacks;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace CallbackHub.Agents;

/// <summary>
/// Finds the agent of a token hash this instance has not seen: one it was not issued here (another instance signed the agent
/// in or rotated the token), or one made up. Hashes asked for meanwhile are looked up together in one indexed query, at most
/// <see cref="CallbackOptions.TokenLookupsPerSecond"/> queries a second (fewer, down to one per <see cref="MaxQuiet"/>, while
/// every query of <see cref="GuessingBatch"/> or more finds only made-up tokens); a hash found in no session is remembered as
/// unknown for <see cref="CallbackOptions.UnknownTokenMemory"/> (a real token is stored before the gateway is given it, so
/// it is never unknown first). So a flood of wrong tokens costs the database a few small queries a second, whatever they
/// name, and a real token this instance has not seen waits at most one interval. A sender already past its refusal budget
/// does not wait at all (<see cref="FindAsync"/> without waiting): its push is refused at once, and what the lookup finds is
/// kept for the retry.
/// </summary>
internal sealed partial class TokenLookup : IAsyncDisposable
{
    public const int MaxHashesPerQuery = 1000;
    public const int MaxWaiting = 20_000;
    private const int MaxRemembered = 200_000;

    /// <summary>A query of at least this many tokens that finds none of them is taken for guessing.</summary>
    public const int GuessingBatch = 8;

    /// <summary>Longest pause between lookups while every one finds only made-up tokens.</summary>
    public static readonly TimeSpan MaxQuiet = TimeSpan.FromSeconds(2);

    private TimeSpan _quiet;

    private const string LookupSql = """
        SELECT agent_id, token_hash, previous_token_hash FROM agent_sessions
        WHERE token_hash = ANY($1) OR previous_token_hash = ANY($1)
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly CallbackOptions _options;
    private readonly CallbackHub.Hosting.CallbackHubMetrics _metrics;
    private readonly ILogger<TokenLookup> _logger;
    private readonly ConcurrentDictionary<string, Waiting> _waiting = new();
    private readonly ConcurrentDictionary<string, long> _unknownUntil = new();

    // Found while nobody waited (the push was answered at once): kept for the retry, then taken by SessionTokens.
    private readonly ConcurrentDictionary<string, int> _found = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TokenBucketRateLimiter _queries;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;

    public TokenLookup(NpgsqlDataSource dataSource, TimeProvider time, IOptions<CallbackOptions> options,
        CallbackHub.Hosting.CallbackHubMetrics metrics, ILogger<TokenLookup> logger)
    {
        _dataSource = dataSource;
        _time = time;
        _options = options.Value;
        _metrics = metrics;
        _logger = logger;
        _queries = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = _options.TokenLookupsPerSecond,
            TokensPerPeriod = _options.TokenLookupsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 1,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>How many queries were made, for tests and metrics.</summary>
    public long Queries => Interlocked.Read(ref _queryCount);

    private long _queryCount;

    /// <summary>
    /// The agent whose session holds <paramref name="hash"/> as its current or previous token, or null. Without
    /// <paramref name="wait"/> the answer is null at once and the hash is looked up all the same, so that the gateway's retry
    /// finds a real token known.
    /// </summary>
    public async ValueTask<int?> FindAsync(byte[] hash, bool wait, CancellationToken cancellationToken)
    {
        var key = Convert.ToBase64String(hash);
        if (_found.TryRemove(key, out var foundEarlier))
        {
            return foundEarlier;
        }

        var now = _time.GetTimestamp();
        if (_unknownUntil.TryGetValue(key, out var until) && now < until)
        {
            _metrics.TokenLookup("remembered-unknown");
            return null;
        }

        if (_waiting.Count >= MaxWaiting && !_waiting.ContainsKey(key))
        {
            // A flood far beyond what the queries can clear: refused without waiting (a real token is asked again in 10 s).
            _metrics.TokenLookup("overflow");
            return null;
        }

        if (!wait)
        {
            // Looked up only while there is room: a flood from senders past their budget never crowds out the ones waiting.
            _metrics.TokenLookup("not-waited");
            if (_waiting.Count < MaxHashesPerQuery)
            {
                _waiting.GetOrAdd(key, static (_, h) => new Waiting(h), hash);
                _wake.Writer.TryWrite(true);
            }

            return null;
        }

        var waiting = _waiting.GetOrAdd(key, static (_, h) => new Waiting(h), hash);
        _wake.Writer.TryWrite(true);

        waiting.Waited = true;
        return await waiting.Found.Task.WaitAsync(cancellationToken);
    }

    private async Task LoopAsync()
    {
        var stopping = _stopping.Token;
        try
        {
            while (await _wake.Reader.WaitToReadAsync(stopping))
            {
                _wake.Reader.TryRead(out _);
                while (!_waiting.IsEmpty)
                {
                    using var permit = await _queries.AcquireAsync(1, stopping);
                    // Pushes that wait come first; the ones answered already fill what room is left.
                    var batch = _waiting.OrderByDescending(w => w.Value.Waited).Take(MaxHashesPerQuery).ToList();
                    if (await LookUpAsync(batch, stopping) || batch.Count < GuessingBatch)
                    {
                        _quiet = TimeSpan.Zero;
                    }
                    else
                    {
                        // Many tokens at once and not one real: someone is guessing. Ask less often the longer it goes on
                        // (up to MaxQuiet between queries); the first real token found brings the full rate back.
                        _quiet = TimeSpan.FromTicks(Math.Clamp(_quiet.Ticks * 2, TimeSpan.FromMilliseconds(250).Ticks, MaxQuiet.Ticks));
                        // Real time, whatever clock the service runs on: this paces load, not the protocol.
                        await Task.Delay(_quiet, stopping);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Looks the batch up; true if it found any of them (or failed: not a sign of guessing).</summary>
    private async Task<bool> LookUpAsync(List<KeyValuePair<string, Waiting>> batch, CancellationToken stopping)
    {
        var found = new Dictionary<string, int>();
        try
        {
            Interlocked.Increment(ref _queryCount);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            timeout.CancelAfter(_options.StoreTimeout);
            await using var command = _dataSource.CreateCommand(LookupSql);
            command.Parameters.Add(new NpgsqlParameter<byte[][]>
            {
                TypedValue = [.. batch.Select(w => w.Value.Hash)],
                NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea,
            });
            await using var reader = await command.ExecuteReaderAsync(timeout.Token);
            while (await reader.ReadAsync(timeout.Token))
            {
                var agentId = reader.GetInt32(0);
                for (var column = 1; column <= 2; column++)
                {
                    if (!reader.IsDBNull(column))
                    {
                        found[Convert.ToBase64String((byte[])reader[column])] = agentId;
                    }
                }
            }
        }
        catch (Exception e) when (!stopping.IsCancellationRequested)
        {
            // Whatever it was, only this batch fails (answered 503, so the gateway retries): the loop goes on.
            LogLookupFailed(e, batch.Count);
            foreach (var (key, waiting) in batch)
            {
                _waiting.TryRemove(KeyValuePair.Create(key, waiting));
                waiting.Found.TrySetException(e);
            }

            return true;
        }

        if (_unknownUntil.Count > MaxRemembered)
        {
            _unknownUntil.Clear();
        }

        if (_found.Count > MaxRemembered)
        {
            _found.Clear();
        }

        var rememberUntil = _time.GetTimestamp() + (long)(_options.UnknownTokenMemory.TotalSeconds * _time.TimestampFrequency);
        foreach (var (key, waiting) in batch)
        {
            _waiting.TryRemove(KeyValuePair.Create(key, waiting));
            if (found.TryGetValue(key, out var agentId))
            {
                _metrics.TokenLookup("found");
                if (!waiting.Waited)
                {
                    _found[key] = agentId;
                }

                waiting.Found.TrySetResult(agentId);
            }
            else
            {
                _metrics.TokenLookup("unknown");
                _unknownUntil[key] = rememberUntil;
                waiting.Found.TrySetResult(null);
            }
        }

        return found.Count > 0;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _loop.ContinueWith(static _ => { }, TaskScheduler.Default);
        foreach (var waiting in _waiting.Values)
        {
            waiting.Found.TrySetCanceled();
        }

        _queries.Dispose();
        _stopping.Dispose();
    }

    private sealed class Waiting(byte[] hash)
    {
        public byte[] Hash { get; } = hash;
        public TaskCompletionSource<int?> Found { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Someone waits for the answer (else a found agent is kept for the sender's retry).</summary>
        public volatile bool Waited;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Looking up {Count} unknown service tokens failed")]
    private partial void LogLookupFailed(Exception exception, int count);
}
