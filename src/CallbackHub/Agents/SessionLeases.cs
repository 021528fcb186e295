using Npgsql;

namespace CallbackHub.Agents;

/// <summary>
/// Which instance keeps which session, on the database's clock (one clock for every instance, and a frozen instance's
/// leases run out whatever its own clock says). Each instance registers itself, renews what it owns, takes free or
/// lapsed sessions up to its share (the keepable sessions ÷ the live instances), and hands back what it has beyond
/// its share, so that N instances each keep about 1/N. A change of owner raises the row's version: a write the old
/// owner based on an earlier read is refused (<see cref="SessionStore.SaveAsync"/>).
/// </summary>
internal sealed class SessionLeases(NpgsqlDataSource dataSource)
{
    private const string Keepable = "(state IN ('active', 'lost', 'signing-in', 'signing-out') OR state = 'failed' AND next_sign_in_at IS NOT NULL)";

    private const string RegisterSql = """
        INSERT INTO keeper_instances (instance_id, expires_at) VALUES ($1, now() + $2)
        ON CONFLICT (instance_id) DO UPDATE SET expires_at = excluded.expires_at
        """;

    private const string RenewSql = "UPDATE agent_sessions SET lease_expires_at = now() + $2 WHERE owner_instance = $1";

    private const string CountSql = $"""
        SELECT (SELECT count(*) FROM keeper_instances WHERE expires_at > now()),
               (SELECT count(*) FROM agent_sessions WHERE {Keepable}),
               (SELECT count(*) FROM agent_sessions WHERE owner_instance = $1 AND {Keepable})
        """;

    // Free first those whose heartbeat is most overdue; rows another instance is changing right now are skipped.
    private const string ClaimSql = $"""
        WITH free AS (
            SELECT agent_id FROM agent_sessions
            WHERE {Keepable} AND owner_instance IS DISTINCT FROM $1 AND (owner_instance IS NULL OR lease_expires_at < now())
            ORDER BY coalesce(last_heartbeat_at, signed_in_at, updated_at)
            LIMIT $3
            FOR UPDATE SKIP LOCKED)
        UPDATE agent_sessions s SET owner_instance = $1, lease_expires_at = now() + $2, version = s.version + 1
        FROM free WHERE s.agent_id = free.agent_id
        """;

    // Handed back: the active sessions heartbeated most recently (the next owner has the most time), none in flight here.
    private const string ReleaseSql = """
        WITH spare AS (
            SELECT agent_id FROM agent_sessions
            WHERE owner_instance = $1 AND state = 'active' AND agent_id <> ALL($3)
            ORDER BY last_heartbeat_at DESC NULLS LAST
            LIMIT $2
            FOR UPDATE SKIP LOCKED)
        UPDATE agent_sessions s SET owner_instance = NULL, lease_expires_at = NULL, version = s.version + 1
        FROM spare WHERE s.agent_id = spare.agent_id
        """;

    private const string OwnedSql = $"""
        SELECT agent_id, state, coalesce(last_heartbeat_at, signed_in_at), next_sign_in_at, updated_at
        FROM agent_sessions WHERE owner_instance = $1 AND lease_expires_at > now() AND {Keepable}
        """;

    private const string ReleaseAllSql =
        "UPDATE agent_sessions SET owner_instance = NULL, lease_expires_at = NULL, version = version + 1 WHERE owner_instance = $1";

    private const string UnregisterSql = "DELETE FROM keeper_instances WHERE instance_id = $1 OR expires_at < now() - interval '1 day'";

    /// <summary>One round of ownership: register, renew, then take or hand back toward this instance's share.</summary>
    /// <returns>The sessions this instance owns after the round.</returns>
    public async Task<LeaseRound> RenewAndBalanceAsync(string instanceId, TimeSpan leaseDuration, IReadOnlyCollection<int> inFlight, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await ExecuteAsync(connection, RegisterSql, cancellationToken, Text(instanceId), Interval(leaseDuration));
        await ExecuteAsync(connection, RenewSql, cancellationToken, Text(instanceId), Interval(leaseDuration));

        long instances, keepable, owned;
        await using (var count = new NpgsqlCommand(CountSql, connection) { Parameters = { Text(instanceId) } })
        await using (var reader = await count.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            (instances, keepable, owned) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
        }

        var share = (keepable + Math.Max(instances, 1) - 1) / Math.Max(instances, 1);
        var taken = 0;
        var released = 0;
        if (owned < share)
        {
            taken = await ExecuteAsync(connection, ClaimSql, cancellationToken,
                Text(instanceId), Interval(leaseDuration), new NpgsqlParameter<int> { TypedValue = (int)(share - owned) });
        }
        else if (owned > share + Math.Max(1, share / 20))
        {
            // A little slack (5 %) keeps two instances from handing the same agents back and forth.
            released = await ExecuteAsync(connection, ReleaseSql, cancellationToken,
                Text(instanceId), new NpgsqlParameter<int> { TypedValue = (int)(owned - share) }, new NpgsqlParameter<int[]> { TypedValue = inFlight.ToArray() });
        }

        return new LeaseRound((int)instances, (int)share, (int)owned + taken - released, taken, released);
    }

    /// <summary>The sessions this instance holds a valid lease on, with what decides whether something is due.</summary>
    public async Task<List<OwnedSession>> ReadOwnedAsync(string instanceId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(OwnedSql);
        command.Parameters.Add(Text(instanceId));
        var owned = new List<OwnedSession>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            owned.Add(new OwnedSession(
                reader.GetInt32(0),
                Storage.AgentSessionStates.Parse(reader.GetString(1)),
                reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2),
                reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3),
                reader.GetFieldValue<DateTimeOffset>(4)));
        }

        return owned;
    }

    /// <summary>On shutdown: every lease back at once, and this instance off the list, so others take over now.</summary>
    public async Task ReleaseAllAsync(string instanceId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await ExecuteAsync(connection, ReleaseAllSql, cancellationToken, Text(instanceId));
        await ExecuteAsync(connection, UnregisterSql, cancellationToken, Text(instanceId));
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddRange(parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };

    private static NpgsqlParameter<TimeSpan> Interval(TimeSpan value) => new() { TypedValue = value };
}

internal sealed record LeaseRound(int Instances, int Share, int Owned, int Taken, int Released);

internal sealed record OwnedSession(int AgentId, Storage.AgentSessionState State, DateTimeOffset? LastAnswer, DateTimeOffset? NextSignInAt, DateTimeOffset UpdatedAt);
