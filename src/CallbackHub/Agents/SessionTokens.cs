using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Agents;

/// <summary>
/// Whether a push's <c>service_token</c> is one the agent's session still accepts — its current token, or the previous
/// one while that is good — compared in constant time. What the database says about an agent's tokens is cached for as
/// long as the caller says (the webhook's <c>Callbacks__SessionCacheTtl</c>), so a push costs one round trip, not two. The first push
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
    NpgsqlDataSource dataSource, TokenLookup lookup, TimeProvider time, IOptions<SessionKeepingOptions> sessions)
{
    // An unknown token triggers a fresh read (another instance may just have rotated it), but no more often
    // than this per agent, so a flood of wrong tokens does not become a flood of queries.
    private static readonly TimeSpan MinReloadInterval = TimeSpan.FromSeconds(1);

    private const string LoadSql = "SELECT token_hash, token_seen_at IS NOT NULL, previous_token_hash, previous_token_valid_until FROM agent_sessions WHERE agent_id = $1";

    // The older token stays good for the overlap (pushes sent with it may still be in flight or retried), unless it
    // was already due to end sooner.
    private const string SeenSql = """
        UPDATE agent_sessions SET token_seen_at = $3,
            previous_token_valid_until = CASE WHEN previous_token_valid_until IS NULL OR previous_token_valid_until > $4
                                              THEN $4 ELSE previous_token_valid_until END
        WHERE agent_id = $1 AND token_hash = $2 AND token_seen_at IS NULL
        RETURNING previous_token_valid_until
        """;

    private readonly ConcurrentDictionary<int, CachedTokens> _cache = new();

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
    /// Called by whatever changes an agent's session in this instance: what changed applies at once, and the tokens it
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
        if (!_cache.TryGetValue(agentId, out var cached) || now - cached.LoadedAt >= cacheFor
            || (!cached.Accepts(hash, now) && now - cached.LoadedAt >= MinReloadInterval))
        {
            cached = await LoadAsync(agentId, now, cancellationToken);
            _cache[agentId] = cached;
            Holds(agentId, cached.Current, cached.Previous);
        }

        if (!cached.Accepts(hash, now))
        {
            return false;
        }

        if (!cached.CurrentSeen && cached.IsCurrent(hash))
        {
            _cache[agentId] = await MarkSeenAsync(agentId, hash, cached, now, cancellationToken);
        }

        return true;
    }

    /// <summary>Called by whatever changes an agent's tokens or state in this instance, so it applies at once.</summary>
    public void Forget(int agentId) => _cache.TryRemove(agentId, out _);

    private async Task<CachedTokens> MarkSeenAsync(int agentId, byte[] hash, CachedTokens cached, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SeenSql);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = hash });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now + sessions.Value.TokenOverlap });
        var previousValidUntil = await command.ExecuteScalarAsync(cancellationToken);
        // Nothing returned: another instance marked it first (or the token changed meanwhile); read again next time.
        return previousValidUntil is DateTimeOffset until
            ? cached with { CurrentSeen = true, PreviousValidUntil = until }
            : cached with { CurrentSeen = true, LoadedAt = DateTimeOffset.MinValue };
    }

    private async Task<CachedTokens> LoadAsync(int agentId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(LoadSql, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        // Runs for every agent every SessionCacheTtl: prepared once per connection, like the append.
        await command.PrepareAsync(cancellationToken);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return new CachedTokens(null, true, null, null, now);
        }

        // Every state takes pushes with a token it still holds: a lost session (the gateway may well still have the
        // agent signed in, and refusing would make it give up and drop the events), and a signed-out one during its
        // grace (the gateway's last event comes after the sign-out). A signed-out session holds no current token.
        return new CachedTokens(
            reader.IsDBNull(0) ? null : (byte[])reader[0],
            reader.GetBoolean(1),
            reader.IsDBNull(2) ? null : (byte[])reader[2],
            reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3),
            now);
    }

    private sealed record CachedTokens(
        byte[]? Current, bool CurrentSeen, byte[]? Previous, DateTimeOffset? PreviousValidUntil, DateTimeOffset LoadedAt)
    {
        public bool IsCurrent(byte[] hash) => Current is not null && CryptographicOperations.FixedTimeEquals(Current, hash);

        public bool Accepts(byte[] hash, DateTimeOffset now)
        {
            // Both comparisons always run, so the time taken says nothing about which token matched.
            var current = IsCurrent(hash);
            var previous = Previous is not null && CryptographicOperations.FixedTimeEquals(Previous, hash);
            // No end yet: the gateway has not been seen using the current token, so it may still use this one.
            return current || (previous && (PreviousValidUntil is null || now < PreviousValidUntil));
        }
    }
}
