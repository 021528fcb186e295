using System.Diagnostics;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The gateway's re-send of a push that is still waiting to be committed (its agent's row held by another transaction) is
/// recognised once the first copy is in: both copies are answered as stored, and the events are stored once, in order.
/// </summary>
public sealed class ConcurrentResendTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    // The first copy waits as long as the test holds the row.
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?> { ["Outbox:AppendLockTimeout"] = "00:00:00" };

    [Fact]
    public async Task A_copy_sent_while_the_first_waits_for_its_commit_is_stored_once()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2);

        await using var holder = await RowLocks.HoldAsync(Database, Agent);

        object[] batch = [Event("AgentEvent_Ringing", new { callid = "1" }, 1_700_000_000_000), Event("AgentEvent_Talking", new { callid = "1" }, 1_700_000_000_001)];
        var first = Gateway.PushOnceAsync(Agent, batch);
        var started = Stopwatch.GetTimestamp();
        while (!await RowLocks.AnyWaitingAsync(Database))
        {
            Assert.False(first.IsCompleted || Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(2), "the first copy never waited for the row");
            await Task.Delay(20);
        }

        var second = Gateway.PushOnceAsync(Agent, batch);
        await Task.Delay(300); // the second copy reaches the store while the first still waits
        await using (var rollback = new NpgsqlCommand("ROLLBACK", holder))
        {
            await rollback.ExecuteNonQueryAsync();
        }

        foreach (var (status, body) in await Task.WhenAll(first, second))
        {
            Assert.Equal((200, "0"), (status, body!["retcode"]!.GetValue<string>()));
        }

        await Database.WaitForRowsAsync(4, Agent);
        await Task.Delay(500); // a second copy stored late would show by now
        var rows = await EventRows.ReadAsync(Database, Agent);
        Assert.Equal(
            [(3L, "AgentEvent_Ringing"), (4L, "AgentEvent_Talking")],
            rows.Skip(2).Select(r => (r.Sequence, r.EventType)));
    }
}
