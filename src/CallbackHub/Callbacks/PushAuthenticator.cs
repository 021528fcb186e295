using System.Collections.Concurrent;
using System.Security.Cryptography;
using CallbackHub.Agents;
using CallbackHub.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Callbacks;

/// <summary>
/// Checks a push's <c>service_token</c> against the agent's current token (or the previous one while its
/// overlap lasts), in constant time. What the database says about an agent's tokens is cached for
/// <see cref="CallbackOptions.SessionCacheTtl"/> so that a push costs one round trip, not two.
/// </summary>
internal sealed class PushAuthenticator(NpgsqlDataSource dataSource, TimeProvider time, IOptions<CallbackOptions> options)
{
    // An unknown token triggers a fresh read (another instance may just have rotated it), but no more often
    // than this per agent, so a flood of wrong tokens does not become a flood of queries.
    private static readonly TimeSpan MinReloadInterval = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<int, CachedTokens> _cache = new();

    public async ValueTask<bool> IsAuthorizedAsync(int agentId, string token, CancellationToken cancellationToken)
    {
        var hash = ServiceToken.Hash(token);
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(agentId, out var cached) && now - cached.LoadedAt < options.Value.SessionCacheTtl)
        {
            if (cached.Accepts(hash, now))
            {
                return true;
            }

            if (now - cached.LoadedAt < MinReloadInterval)
            {
                return false;
            }
        }

        var fresh = await LoadAsync(agentId, now, cancellationToken);
        _cache[agentId] = fresh;
        return fresh.Accepts(hash, now);
    }

    /// <summary>Called by whatever changes an agent's tokens or state in this instance, so it applies at once.</summary>
    public void Forget(int agentId) => _cache.TryRemove(agentId, out _);

    private async Task<CachedTokens> LoadAsync(int agentId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "SELECT token_hash, previous_token_hash, previous_token_valid_until FROM agent_sessions WHERE agent_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = agentId });
        // Runs for every agent every SessionCacheTtl: prepared once per connection, like the append.
        await command.PrepareAsync(cancellationToken);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return new CachedTokens(null, null, null, now);
        }

        // Every state takes pushes with a token it still holds: a lost session (the gateway may well still have the
        // agent signed in, and refusing would make it give up and drop the events), and a signed-out one during its
        // grace (the gateway's last event comes after the sign-out). A signed-out session holds no current token.
        return new CachedTokens(
            reader.IsDBNull(0) ? null : (byte[])reader[0],
            reader.IsDBNull(1) ? null : (byte[])reader[1],
            reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2),
            now);
    }

    private sealed record CachedTokens(
        byte[]? Current, byte[]? Previous, DateTimeOffset? PreviousValidUntil, DateTimeOffset LoadedAt)
    {
        public bool Accepts(byte[] hash, DateTimeOffset now)
        {
            // Both comparisons always run, so the time taken says nothing about which token matched.
            var current = Current is not null && CryptographicOperations.FixedTimeEquals(Current, hash);
            var previous = Previous is not null && CryptographicOperations.FixedTimeEquals(Previous, hash);
            return current || (previous && now < PreviousValidUntil);
        }
    }
}
