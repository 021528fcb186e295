using System.Diagnostics;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// While another transaction holds an agent's stream row (a frozen instance's, until it is ended), only that agent's push
/// waits, and only up to Outbox__AppendLockTimeout: the pushes committed with it go in without it.
/// </summary>
public sealed class AppendLockTimeoutTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private const int Held = 1002;
    private const int Free = 1003;

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Outbox:AppendLockTimeout"] = "00:00:02",
        // One writer: the pushes that arrive while it waits are committed together, in one group.
        ["Outbox:CommitWriters"] = "1",
        ["Callbacks:StoreTimeout"] = "00:00:10",
        ["Database:StalledTransactionTimeout"] = "00:00:00",
    };

    [Fact]
    public async Task A_push_blocked_on_its_agent_s_row_is_refused_after_the_limit_and_the_pushes_committed_with_it_are_stored()
    {
        foreach (var agent in new[] { Agent, Held, Free })
        {
            await SignInAsync(agent);
        }

        await Database.WaitForRowsAsync(6);

        // Someone holds the stream rows of agents 1001 and 1002 (a frozen instance would).
        await using var holder = await RowLocks.HoldAsync(Database, Agent, Held);

        var started = Stopwatch.GetTimestamp();
        var first = Gateway.PushOnceAsync(Agent, [Event("AgentState_Work", eventGenTime: 1_700_000_000_000)]);
        var blocked = false;
        while (!blocked && !first.IsCompleted && Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(3))
        {
            blocked = await RowLocks.AnyWaitingAsync(Database);
            await Task.Delay(20);
        }

        Assert.True(blocked, "the first push never waited for its agent's row: the test proves nothing");

        // While the only writer waits, two more pushes arrive: the next commit takes both, the held agent's first.
        var held = Gateway.PushOnceAsync(Held, [Event("AgentState_Work", eventGenTime: 1_700_000_000_000)]);
        var free = Gateway.PushOnceAsync(Free, [Event("AgentState_Work", eventGenTime: 1_700_000_000_000)]);

        var (firstStatus, _) = await first;
        var firstWaited = Stopwatch.GetElapsedTime(started);
        var (freeStatus, freeBody) = await free;
        var freeWaited = Stopwatch.GetElapsedTime(started);
        var (heldStatus, _) = await held;

        // Refused after the limit (2 s), long before the store's deadline (10 s): the gateway sends them again.
        Assert.Equal(503, firstStatus);
        Assert.InRange(firstWaited.TotalSeconds, 1.9, 5);
        Assert.Equal(503, heldStatus);
        // Stored once its group went on without the held agent: at most two waits of the limit, not the store's deadline.
        Assert.Equal(200, freeStatus);
        Assert.Equal("0", freeBody!["retcode"]!.GetValue<string>());
        Assert.True(freeWaited < TimeSpan.FromSeconds(7), $"the free agent's push waited {freeWaited.TotalSeconds:0.0} s");
        var rows = await Database.WaitForRowsAsync(3, Free);
        Assert.Equal(("AgentState_Work", 3L), (rows[^1].EventType, rows[^1].Sequence));
        Assert.Equal(2, (await EventRows.ReadAsync(Database, Held)).Count);
        Assert.Equal(2, (await EventRows.ReadAsync(Database, Agent)).Count);

        // Once the row is free, the gateway's re-send is stored.
        await using (var rollback = new NpgsqlCommand("ROLLBACK", holder))
        {
            await rollback.ExecuteNonQueryAsync();
        }

        var (againStatus, againBody) = await Gateway.PushOnceAsync(Held, [Event("AgentState_Work", eventGenTime: 1_700_000_000_000)]);
        Assert.Equal((200, "0"), (againStatus, againBody!["retcode"]!.GetValue<string>()));
        var heldRows = await Database.WaitForRowsAsync(3, Held);
        Assert.Equal(("AgentState_Work", 3L), (heldRows[^1].EventType, heldRows[^1].Sequence));
    }
}
