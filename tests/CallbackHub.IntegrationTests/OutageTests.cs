using System.Net;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>Nothing accepted is lost when the broker or the database goes away, or CallbackHub restarts.</summary>
public sealed class OutageTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    [Fact]
    public async Task With_the_broker_stopped_pushes_are_accepted_and_delivered_once_it_returns()
    {
        var queue = $"outage-{Guid.NewGuid():N}";
        await (await QueueProbe.StartAsync(Broker, "#", queue)).DisposeAsync(); // a durable queue, bound before the outage
        await SignInAsync();
        await Database.WaitForRowsAsync(2); // the sign-in events are pushed by the gateway on its own, after the answer
        await EventRows.WaitUntilPublishedAsync(Database);

        await RabbitMq.StopAsync();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var (status, body) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work"), Event("AgentEvent_Call_Release", $"call-{i}")]);
                Assert.Equal(200, status);
                Assert.Equal("0", body!["retcode"]!.GetValue<string>());
            }

            Assert.Equal(6, (await EventRows.ReadAsync(Database, Agent)).Count(r => !r.Published));
        }
        finally
        {
            await RabbitMq.StartAsync();
        }

        await using var consumer = await QueueProbe.StartAsync(Broker, "#", queue);
        var messages = await consumer.WaitForAsync(8, TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), messages.Select(m => m.Message.Sequence).Distinct().Order());
        Assert.Equal(["call-0", "call-1", "call-2"], messages.Where(m => m.Message.EventType == "AgentEvent_Call_Release")
            .Select(m => System.Text.Json.JsonSerializer.Deserialize<string>(m.Message.Content)).Distinct());
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database, TimeSpan.FromSeconds(30)), r => Assert.True(r.Published));
    }

    [Fact]
    public async Task A_restarted_instance_publishes_what_was_stored_but_not_yet_published()
    {
        var queue = $"restart-{Guid.NewGuid():N}";
        await (await QueueProbe.StartAsync(Broker, "#", queue)).DisposeAsync();
        await SignInAsync();
        await Database.WaitForRowsAsync(2); // the sign-in events are pushed by the gateway on its own, after the answer
        await EventRows.WaitUntilPublishedAsync(Database);
        await RabbitMq.StopAsync();
        try
        {
            var (status, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")]);
            Assert.Equal(200, status);
            // CallbackHub goes down with the event stored but unpublished.
            await Hub.DisposeAsync();
        }
        finally
        {
            await RabbitMq.StartAsync();
        }

        await using var restarted = await StartHubAsync();
        await using var consumer = await QueueProbe.StartAsync(Broker, "#", queue);
        var messages = await consumer.WaitForAsync(3, TimeSpan.FromSeconds(30));
        Assert.Contains(messages, m => m.Message is { EventType: "AgentState_Work", Sequence: 3 });
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database), r => Assert.True(r.Published));
    }

    [Fact]
    public async Task With_PostgreSQL_stopped_a_push_is_answered_503_so_the_gateway_retries()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(2);

        await Postgres.StopAsync();
        int status;
        string? retcode;
        try
        {
            (status, var body) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")]);
            retcode = body?["retcode"]?.GetValue<string>();
        }
        finally
        {
            await Postgres.StartAsync();
        }

        Assert.Equal((int)HttpStatusCode.ServiceUnavailable, status);
        Assert.NotNull(retcode);
        Assert.NotEqual("0", retcode);
        // The gateway's retry of the same batch goes through once the database is back.
        var (retried, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")]);
        Assert.Equal(200, retried);
        Assert.Equal(["AgentOther_InService", "AgentState_Ready", "AgentState_Work"], (await EventRows.ReadAsync(Database, Agent)).Select(r => r.EventType));
    }
}
