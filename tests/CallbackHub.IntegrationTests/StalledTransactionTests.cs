using System.Diagnostics;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// An instance frozen (or cut off) in the middle of a group commit keeps its agents' stream rows locked for as long as it
/// is frozen: PostgreSQL does not end a transaction whose client merely stopped talking. The instances left end it, on the
/// database's clock, and the agents' pushes go on.
/// </summary>
public sealed class StalledTransactionTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Database:StalledTransactionTimeout"] = "00:00:02",
        // The wait for the row is what this test is about: not cut short (AppendLockTimeoutTests is about that).
        ["Outbox:AppendLockTimeout"] = "00:00:00",
    };

    [Fact]
    public async Task A_frozen_instance_s_lock_on_an_agent_is_ended_and_the_agent_s_push_is_stored_by_another()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2);

        // A CallbackHub session (same application name) that took the agent's stream row in a transaction and went silent,
        // as a frozen instance's group commit does.
        await using var frozen = await OpenAsync("CallbackHub");
        await using (var lockRow = new NpgsqlCommand($"BEGIN; UPDATE agent_streams SET last_batch_at = last_batch_at WHERE agent_id = {Agent}", frozen))
        {
            await lockRow.ExecuteNonQueryAsync();
        }

        // Someone else's session, silent in a transaction just as long: not CallbackHub's to end.
        await using var other = await OpenAsync("a reporting job");
        await using (var begin = new NpgsqlCommand("BEGIN; SELECT count(*) FROM agent_events", other))
        {
            await begin.ExecuteScalarAsync();
        }

        var started = Stopwatch.GetTimestamp();
        var push = Gateway.PushOnceAsync(Agent, [Event("AgentState_Work", eventGenTime: 1_700_000_000_000)]);
        // The push waits for the row (what the frozen instance's agents' pushes did before, until it was resumed).
        var blocked = false;
        while (!blocked && !push.IsCompleted && Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(5))
        {
            blocked = await RowLocks.AnyWaitingAsync(Database);
            await Task.Delay(50);
        }

        Assert.True(blocked, "the push never waited for the agent's row: the test proves nothing");
        var (status, body) = await push;
        var waited = Stopwatch.GetElapsedTime(started);

        Assert.Equal(200, status);
        Assert.Equal("0", body!["retcode"]!.GetValue<string>());
        // Stored once the lock was freed (the limit, 2 s, and a check), before the store's 5-s deadline.
        Assert.True(waited < TimeSpan.FromSeconds(4.5), $"the push waited {waited.TotalSeconds:0.0} s");
        var rows = await Database.WaitForRowsAsync(3, Agent);
        Assert.Equal("AgentState_Work", rows[^1].EventType);
        Assert.Equal(3, rows[^1].Sequence);

        // The frozen session's transaction was rolled back with its connection; the other application's was left alone.
        await Assert.ThrowsAnyAsync<NpgsqlException>(async () =>
        {
            await using var probe = new NpgsqlCommand("SELECT 1", frozen);
            await probe.ExecuteScalarAsync();
        });
        await using (var probe = new NpgsqlCommand("SELECT 1", other))
        {
            Assert.Equal(1, await probe.ExecuteScalarAsync()); // still in its transaction, still answering
        }

        var metrics = await PrometheusText.EventuallyAsync(Hub.MetricsAsync,
            m => PrometheusText.Sample(m, "callbackhub_database_stalled_transactions_ended_total") >= 1, TimeSpan.FromSeconds(10));
        Assert.Equal(1, PrometheusText.Sample(metrics, "callbackhub_database_stalled_transactions_ended_total"));
    }

    private async Task<NpgsqlConnection> OpenAsync(string applicationName)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(Database) { ApplicationName = applicationName, Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}
