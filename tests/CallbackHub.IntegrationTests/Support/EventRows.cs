using Npgsql;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>What a user sees with psql: the rows of <c>agent_events</c> and <c>agent_sessions</c>.</summary>
internal static class EventRows
{
    public static async Task<IReadOnlyList<EventRow>> ReadAsync(string connectionString, int? agentId = null)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT e.event_id, e.agent_id, e.sequence, e.event_type, e.content::text, e.event_gen_time, e.received_at,
                   e.sequence <= s.published_sequence
            FROM agent_events e JOIN agent_streams s ON s.agent_id = e.agent_id
            WHERE $1::int IS NULL OR e.agent_id = $1 ORDER BY e.agent_id, e.sequence
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)agentId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<EventRow>();
        while (await reader.ReadAsync())
        {
            rows.Add(new EventRow(
                reader.GetGuid(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5),
                reader.GetFieldValue<DateTimeOffset>(6),
                reader.GetBoolean(7)));
        }

        return rows;
    }

    /// <summary>Waits until every stored event is recorded as published (or the time is up).</summary>
    public static async Task<IReadOnlyList<EventRow>> WaitUntilPublishedAsync(string connectionString, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var rows = await ReadAsync(connectionString);
            if (rows.All(r => r.Published) || DateTime.UtcNow > deadline)
            {
                return rows;
            }

            await Task.Delay(50);
        }
    }

    public static async Task<T?> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }
}

internal sealed record EventRow(
    Guid EventId, int AgentId, long Sequence, string EventType, string Content,
    DateTimeOffset? EventGenTime, DateTimeOffset ReceivedAt, bool Published);

internal static class EventRowsWaiting
{
    /// <summary>Waits until the agent has at least <paramref name="count"/> stored events and returns them.</summary>
    public static async Task<IReadOnlyList<EventRow>> WaitForRowsAsync(this string connectionString, int count, int? agentId = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var rows = await EventRows.ReadAsync(connectionString, agentId);
            if (rows.Count >= count || DateTime.UtcNow > deadline)
            {
                return rows;
            }

            await Task.Delay(50);
        }
    }
}
