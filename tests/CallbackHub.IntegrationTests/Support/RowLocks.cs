using Npgsql;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>Another application's open transaction holding agents' stream rows, as a frozen instance's would.</summary>
internal static class RowLocks
{
    /// <summary>A session (not CallbackHub's: the stalled-transaction check leaves it alone) that took the agents' stream
    /// rows in a transaction it leaves open.</summary>
    public static async Task<NpgsqlConnection> HoldAsync(string database, params int[] agents)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database) { ApplicationName = "holder", Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var lockRows = new NpgsqlCommand($"BEGIN; SELECT 1 FROM agent_streams WHERE agent_id IN ({string.Join(", ", agents)}) FOR UPDATE", connection);
        await lockRows.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>Whether a session of the database waits for a lock right now.</summary>
    public static async Task<bool> AnyWaitingAsync(string database) => await EventRows.ScalarAsync<long>(database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") > 0;
}
