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

/// <summary>A push that took longer than Callbacks__CommitWithin to arrive is answered 503 and not stored: committed now, it
/// could land after the gateway's re-send of it.</summary>
public sealed class CommitDeadlineTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?> { ["Callbacks:CommitWithin"] = "00:00:01" };

    [Fact]
    public async Task A_push_whose_body_arrived_past_the_commit_deadline_is_answered_503_and_not_stored()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(2);

        Assert.StartsWith("HTTP/1.1 503", await PushSlowlyAsync(token, TimeSpan.FromSeconds(1.5)));
        await Task.Delay(300);
        Assert.Equal(2, (await EventRows.ReadAsync(Database, Agent)).Count);

        // The gateway's re-send, on time, is stored.
        Assert.StartsWith("HTTP/1.1 200", await PushSlowlyAsync(token, TimeSpan.Zero));
        Assert.Equal("AgentState_Work", (await Database.WaitForRowsAsync(3, Agent))[^1].EventType);
    }

    private async Task<string> PushSlowlyAsync(string token, TimeSpan pause)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(Hub.BaseUri.Host, Hub.BaseUri.Port);
        await using var stream = client.GetStream();
        var body = System.Text.Encoding.UTF8.GetBytes(
            $$"""{"workNo":"{{Agent}}","eventList":[{"eventType":"AgentState_Work","workNo":"{{Agent}}","eventGenTime":1700000000000}]}""");
        var head = $"POST /callbacks/agent-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nservice_token: {token}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(head).Concat(body.Take(body.Length / 2)).ToArray());
        await Task.Delay(pause);
        await stream.WriteAsync(body.Skip(body.Length / 2).ToArray());
        using var reader = new StreamReader(stream);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        return await reader.ReadToEndAsync(cancel.Token);
    }
}

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
