using System.Diagnostics;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// A push past its commit deadline (Callbacks__CommitWithin from its arrival; it was answered 503 by then) is not committed
/// when its statement gets through later: the gateway sends it again, and that copy, not this one, is stored. Committed
/// late, it could land after the re-send and the agent's next push, taken by another instance meanwhile.
/// </summary>
public sealed class LateCommitTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Callbacks:StoreTimeout"] = "00:00:02",
        ["Callbacks:CommitWithin"] = "00:00:03",
        ["Outbox:AppendLockTimeout"] = "00:00:00",
        ["Database:StalledTransactionTimeout"] = "00:00:00",
    };

    [Fact]
    public async Task A_push_past_its_commit_deadline_is_not_stored_when_its_wait_ends()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2);

        await using var holder = await RowLocks.HoldAsync(Database, Agent);

        object[] batch = [Event("AgentState_Work", eventGenTime: 1_700_000_000_000)];
        var sent = Stopwatch.GetTimestamp();
        var (status, _) = await Gateway.PushOnceAsync(Agent, batch);
        Assert.Equal(503, status);
        Assert.True(await RowLocks.AnyWaitingAsync(Database),
            "the push's statement is no longer waiting: the test proves nothing");

        // Past the commit deadline (3 s), the row is freed: the statement that waited goes through, and is rolled back.
        var wait = TimeSpan.FromSeconds(3.5) - Stopwatch.GetElapsedTime(sent);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        await using (var rollback = new NpgsqlCommand("ROLLBACK", holder))
        {
            await rollback.ExecuteNonQueryAsync();
        }

        var started = Stopwatch.GetTimestamp();
        while (await RowLocks.AnyWaitingAsync(Database)
               && Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(20);
        }

        await Task.Delay(500);
        Assert.Equal(2, (await EventRows.ReadAsync(Database, Agent)).Count);

        // The gateway's re-send is stored, once.
        var (again, body) = await Gateway.PushOnceAsync(Agent, batch);
        Assert.Equal((200, "0"), (again, body!["retcode"]!.GetValue<string>()));
        await Database.WaitForRowsAsync(3, Agent);
        await Task.Delay(300);
        var rows = await EventRows.ReadAsync(Database, Agent);
        Assert.Equal([(3L, "AgentState_Work")], rows.Skip(2).Select(r => (r.Sequence, r.EventType)));
    }
}
