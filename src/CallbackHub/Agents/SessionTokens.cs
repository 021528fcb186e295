using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using CallbackHub.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Agents;

/// <summary>
/// Whether a push's <c>service_token</c> is one the agent's session still accepts — its current token, or the previous
/// one while that is good — compared in constant time. What the database says about an agent's tokens is cached for as
/// long as the caller says (the webhook's <c>Callbacks__SessionCacheTtl</c>), so a push costs one round trip, not two — and for as
/// long as <see cref="TokenChangeFeed"/> keeps up, it is not read again at all: the feed hands over every change of any
/// session's tokens within a poll interval (a sign-out elsewhere, a rotation, a token cleared by hand). The first push
/// with a new token is remembered (for every instance, in the row): it proves the gateway uses that token, which
/// retires the older one after <see cref="SessionKeepingOptions.TokenOverlap"/> and allows the next rotation.
/// <para>
/// A push is authenticated by its token alone, before its body is read: every token hash this instance has seen accepted,
/// or issued itself, points to its agent. A hash it does not know is looked up by <see cref="TokenLookup"/>, which asks
/// the database for many such hashes at once, a bounded number of times per second — so strangers with made-up tokens cost
/// a few queries a second however many they send, and nothing else.
/// </para>
/// </summary>
internal sealed class SessionTokens(
    NpgsqlDataSource dataSource, TokenLookup lookup, TimeProvider time, IOptions<SessionKeepingOptions> sessions, CallbackHubMetrics metrics)
{
    // An unknown token triggers a fresh read (another instance may just have rotated it), but no more often
    // than this per agent, so a flood of wrong tokens does not become a flood of queries.
    private static readonly TimeSpan MinReloadInterval = TimeSpan.FromSeconds(1);

    // tokens_version counts the changes of the row's tokens (a trigger raises it): of two reads, the higher version is newer.
    internal const string Columns = "token_hash, token_seen_at IS NOT NULL, previous_token_hash, previous_token_valid_until, tokens_version";

    private const string LoadSql = $"SELECT {Columns} FROM agent_sessions WHERE agent_id = $1";

    // The older token stays good for the overlap (pushes sent with it may still be in flight or retried), unless it
    // was already due to end sooner.
    private const string SeenSql = $"""
        UPDATE agent_sessions SET token_seen_at = $3,
            previous_token_valid_until = CASE WHEN previous_token_valid_until IS NULL OR previous_token_valid_until > $4
                                              THEN $4 ELSE previous_token_valid_until END
        WHERE agent_id = $1 AND token_hash = $2 AND token_seen_at IS NULL
        RETURNING {Columns}
        """;

    private readonly ConcurrentDictionary<int, CachedTokens> _cache = new();

    // The change feed's progress: how many of its polls were applied (0: none yet), and when (Stopwatch) the last applied one
    // began. A read made after poll n was applied is corrected by poll n + 1 or a later one if the row changes afterwards, so
    // while the polls keep coming, such a read stays true without a TTL; see IsFollowed.
    private long _generation;
    private long _lastPollStartedAt;

    // When (Stopwatch) this instance last changed an agent's session, for the agents changed in the last minute: what was read
    // before that is not stored, so a change made here applies at once even while a read (or a poll) from before it finishes.
    private readonly ConcurrentDictionary<int, long> _changedHereAt = new();
    private static readonly TimeSpan ChangedHereMemory = TimeSpan.FromMinutes(1);

    // Token hash (base64) → its agent, for the tokens each agent's session holds now as far as this instance knows
    // (_hashesByAgent): an agent's retired hashes leave when its tokens are next read or saved, so the map stays at about
    // two entries per agent however often tokens rotate.
    private readonly ConcurrentDictionary<string, int> _agentByToken = new();
    private readonly ConcurrentDictionary<int, string[]> _hashesByAgent = new();

    /// <summary>
    /// The agent whose session accepts <paramref name="token"/> now, or null. A token not known here is looked up; unless
    /// <paramref name="mayWait"/> says so (asked only then: a sender past its refusal budget may not), the push does not wait
    /// for that, and is refused.
    /// </summary>
    public async ValueTask<int?> AuthenticateAsync(string token, TimeSpan cacheFor, Func<bool> mayWait, CancellationToken cancellationToken)
    {
        var hash = ServiceToken.Hash(token);
        var key = Convert.ToBase64String(hash);
        var justFound = false;
        if (!_agentByToken.TryGetValue(key, out var agentId))
        {
            if (await lookup.FindAsync(hash, mayWait(), cancellationToken) is not { } found)
            {
                return null;
            }

            (agentId, justFound) = (found, true);
        }

        // A hash the database just gave for this agent is read afresh: the cached tokens may predate it.
        if (await IsAuthorizedAsync(agentId, hash, justFound ? TimeSpan.Zero : cacheFor, cancellationToken))
        {
            return agentId;
        }

        _agentByToken.TryRemove(KeyValuePair.Create(key, agentId));
        return null;
    }

    /// <summary>
    /// Called by whatever changes an agent's tokens in this instance: the change applies at once, and the tokens the session
    /// holds are known here without a lookup.
    /// </summary>
    public void Saved(int agentId, byte[]? tokenHash, byte[]? previousTokenHash)
    {
        Forget(agentId);
        Holds(agentId, tokenHash, previousTokenHash);
    }

    /// <summary>Records the tokens <paramref name="agentId"/>'s session holds, and forgets the ones it no longer does.</summary>
    private void Holds(int agentId, byte[]? current, byte[]? previous)
    {
        string[] now = [.. ((byte[]?[])[current, previous]).OfType<byte[]>().Select(Convert.ToBase64String)];
        var before = _hashesByAgent.TryGetValue(agentId, out var held) ? held : [];
        _hashesByAgent[agentId] = now;
        foreach (var key in before.Except(now))
        {
            _agentByToken.TryRemove(KeyValuePair.Create(key, agentId));
        }

        foreach (var key in now)
        {
            _agentByToken[key] = agentId;
        }
    }

    private async ValueTask<bool> IsAuthorizedAsync(int agentId, byte[] hash, TimeSpan cacheFor, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var reason = !_cache.TryGetValue(agentId, out var cached) ? "first"
            : !IsFollowed(cached, cacheFor) && now - cached.LoadedAt >= cacheFor ? "expired"
            : !cached.Accepts(hash, now) && now - cached.LoadedAt >= MinReloadInterval ? "token-not-held"
            : null;
        if (reason is not null)
        {
            metrics.SessionTokensRead(reason);
            // Changed here meanwhile: this push is judged on what was read, the next one reads again.
            var read = await LoadAsync(agentId, now, cancellationToken);
            cached = Store(agentId, read) ?? read;
        }

        if (!cached!.Accepts(hash, now))
        {
            return false;
        }

        if (!cached.Tokens.CurrentSeen && cached.IsCurrent(hash))
        {
            if (await MarkSeenAsync(agentId, hash, now, cancellationToken) is { } marked)
            {
                Store(agentId, marked);
            }
            else
            {
                // Nothing changed: another instance marked it first, or the token changed meanwhile; read again next time.
                _cache.TryRemove(KeyValuePair.Create(agentId, cached));
            }
        }

        return true;
    }

    /// <summary>
    /// Whether the change feed would have corrected <paramref name="cached"/> by now: it was read after the feed's first poll,
    /// and a poll has begun within <paramref name="cacheFor"/> (so a change committed earlier than that has arrived).
    /// </summary>
    private bool IsFollowed(CachedTokens cached, TimeSpan cacheFor) =>
        cached.Generation > 0 && cacheFor > TimeSpan.Zero
        && Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastPollStartedAt)) < cacheFor;

    /// <summary>
    /// Stores what was read, unless something newer is stored for the agent already (a higher tokens_version): what is
    /// stored then. Null when this instance changed the session after the read began (checked again after storing, as the
    /// change may come in between): whether the read is older or newer than that change is not known, so nothing is stored.
    /// </summary>
    private CachedTokens? Store(int agentId, CachedTokens read)
    {
        if (!ChangedHereSince(agentId, read.ReadStartedAt))
        {
            var kept = _cache.AddOrUpdate(agentId, read, (_, existing) => Newer(existing, read));
            if (!ChangedHereSince(agentId, read.ReadStartedAt))
            {
                Holds(agentId, kept.Tokens.Current, kept.Tokens.Previous);
                return kept;
            }

            _cache.TryRemove(KeyValuePair.Create(agentId, kept));
        }

        return null;
    }

    /// <summary>
    /// The newer of two reads of an agent's tokens. A read that saw a later version than a poll's snapshot did was made after
    /// that snapshot, so later changes reach it through later polls: it takes the higher generation of the two.
    /// </summary>
    private static CachedTokens Newer(CachedTokens a, CachedTokens b)
    {
        var (newer, older) = a.Tokens.Version > b.Tokens.Version || (a.Tokens.Version == b.Tokens.Version && a.Generation >= b.Generation) ? (a, b) : (b, a);
        return newer.Generation >= older.Generation ? newer : newer with { Generation = older.Generation };
    }

    /// <summary>
    /// Called by <see cref="TokenChangeFeed"/> with the sessions whose tokens changed since its last poll (none on its
    /// first), as read in a snapshot taken after <paramref name="pollStartedAt"/> (a Stopwatch timestamp).
    /// </summary>
    public void Changed(IReadOnlyList<Stored> sessions, long pollStartedAt)
    {
        var generation = Interlocked.Read(ref _generation) + 1;
        var now = time.GetUtcNow();
        foreach (var s in sessions)
        {
            if (Store(s.AgentId, new CachedTokens(s, now, generation, pollStartedAt)) is null)
            {
                // Changed here while the poll ran, and the poll that follows will not bring this row again: nothing read so
                // far is kept, and the agent's next push reads its tokens afresh (so does a read still under way).
                Forget(s.AgentId);
            }
        }

        foreach (var (agentId, at) in _changedHereAt)
        {
            if (Stopwatch.GetElapsedTime(at) > ChangedHereMemory)
            {
                _changedHereAt.TryRemove(KeyValuePair.Create(agentId, at));
            }
        }

        metrics.SessionTokenChanges(sessions.Count);
        // In this order: a read that sees the new generation began after these rows were stored.
        Interlocked.Exchange(ref _lastPollStartedAt, pollStartedAt);
        Interlocked.Exchange(ref _generation, generation);
    }

    /// <summary>One session's tokens as stored.</summary>
    public sealed record Stored(int AgentId, byte[]? Current, bool CurrentSeen, byte[]? Previous, DateTimeOffset? PreviousValidUntil, long Version)
    {
        /// <summary>Reads the <see cref="Columns"/>, from <paramref name="first"/> on.</summary>
        public static Stored Read(NpgsqlDataReader reader, int agentId, int first = 0) => new(
            agentId,
            reader.IsDBNull(first) ? null : (byte[])reader[first],
            reader.GetBoolean(first + 1),
            reader.IsDBNull(first + 2) ? null : (byte[])reader[first + 2],
            reader.IsDBNull(first + 3) ? null : reader.GetFieldValue<DateTimeOffset>(first + 3),
            reader.GetInt64(first + 4));
    }

    /// <summary>Drops what this instance knows of the agent's tokens, and any read of them under way: the next push reads them.</summary>
    public void Forget(int agentId)
    {
        _changedHereAt[agentId] = Stopwatch.GetTimestamp();
        _cache.TryRemove(agentId, out _);
    }

    private bool ChangedHereSince(int agentId, long timestamp) => _changedHereAt.TryGetValue(agentId, out var at) && at >= timestamp;

    /// <summary>Records that the gateway uses the current token; the tokens as they are then, or null if that was done already.</summary>
    private async Task<CachedTokens?> MarkSeenAsync(int agentId, byte[] hash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var generation = Interlocked.Read(ref _generation);
        await using var command = dataSource.CreateCommand(SeenSql);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = hash });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now + sessions.Value.TokenOverlap });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new CachedTokens(Stored.Read(reader, agentId), now, generation, startedAt)
            : null;
    }

    private async Task<CachedTokens> LoadAsync(int agentId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Read before the query: the feed's polls after this one correct what the query returns.
        var generation = Interlocked.Read(ref _generation);
        var startedAt = Stopwatch.GetTimestamp();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(LoadSql, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        // Runs on a push whose agent's tokens this instance does not know (or no longer trusts): prepared once per connection, like the append.
        await command.PrepareAsync(cancellationToken);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        // No session: nothing is accepted (version 0: any row stored later is newer).
        // Every state takes pushes with a token it still holds: a lost session (the gateway may well still have the
        // agent signed in, and refusing would make it give up and drop the events), and a signed-out one during its
        // grace (the gateway's last event comes after the sign-out). A signed-out session holds no current token.
        return await reader.ReadAsync(cancellationToken)
            ? new CachedTokens(Stored.Read(reader, agentId), now, generation, startedAt)
            : new CachedTokens(new Stored(agentId, null, true, null, null, 0), now, generation, startedAt);
    }

    /// <param name="Generation">How many of the change feed's polls had been applied when this was read (0: none, or not to be trusted past the TTL).</param>
    /// <param name="ReadStartedAt">When (Stopwatch) the read began.</param>
    private sealed record CachedTokens(Stored Tokens, DateTimeOffset LoadedAt, long Generation, long ReadStartedAt)
    {
        public bool IsCurrent(byte[] hash) => Tokens.Current is { } current && CryptographicOperations.FixedTimeEquals(current, hash);

        public bool Accepts(byte[] hash, DateTimeOffset now)
        {
            // Both comparisons always run, so the time taken says nothing about which token matched.
            var current = IsCurrent(hash);
            var previous = Tokens.Previous is { } held && CryptographicOperations.FixedTimeEquals(held, hash);
            // No end yet: the gateway has not been seen using the current token, so it may still use this one.
            return current || (previous && (Tokens.PreviousValidUntil is not { } until || now < until));
        }
    }
}
