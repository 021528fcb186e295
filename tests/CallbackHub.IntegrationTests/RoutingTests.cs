using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>What consumers see on RabbitMQ: per-agent order, and subscriptions to a subset of event types.</summary>
public sealed class RoutingTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    [Fact]
    public async Task Each_agents_events_arrive_in_sequence_order_while_agents_are_pushed_concurrently()
    {
        int[] agents = [2001, 2002, 2003, 2004, 2005, 2006];
        await using var consumer = await QueueProbe.StartAsync(Broker);
        var tokens = new Dictionary<int, string>();
        foreach (var agent in agents)
        {
            tokens[agent] = await SignInAsync(agent);
        }

        const int batches = 25;
        await Task.WhenAll(agents.Select(async agent =>
        {
            for (var i = 0; i < batches; i++)
            {
                var (status, _) = await Gateway.PushOnceAsync(agent, [
                    Event("AgentEvent_Ringing", new { callid = $"{agent}-{i}" }),
                    Event("AgentEvent_Talking", new { callid = $"{agent}-{i}" }),
                    Event("AgentEvent_Call_Release", $"{agent}-{i}"),
                ]);
                Assert.Equal(200, status);
            }
        }));

        var expectedPerAgent = 2 + (batches * 3);
        var messages = await consumer.WaitForAsync(agents.Length * expectedPerAgent, TimeSpan.FromSeconds(60));
        foreach (var agent in agents)
        {
            var sequences = messages.Where(m => m.Message.AgentId == agent).Select(m => m.Message.Sequence).ToList();
            Assert.Equal(Enumerable.Range(1, expectedPerAgent).Select(i => (long)i), sequences);
        }
    }

    [Fact]
    public async Task A_consumer_bound_to_AgentState_receives_only_state_events()
    {
        await using var states = await QueueProbe.StartAsync(Broker, "AgentState.#");
        await using var ringing = await QueueProbe.StartAsync(Broker, "*.AgentEvent_Ringing.*");
        await using var everything = await QueueProbe.StartAsync(Broker, "#");
        await SignInAsync();
        // The gateway pushes the sign-in's AgentOther_InService and AgentState_Ready on its own; this test's push must come after.
        await everything.WaitForAsync(2);

        await Gateway.PushOnceAsync(Agent, [
            Event("AgentEvent_Ringing", new { callid = "1" }),
            Event("AgentState_SetNotReady_Success", new { reason = "200" }),
            Event("AgentEvent_Call_Release", "1"),
            Event("AgentState_Work"),
        ]);

        await everything.WaitForAsync(6);
        await Task.Delay(300);
        Assert.Equal(["AgentState_Ready", "AgentState_SetNotReady_Success", "AgentState_Work"],
            states.Received.Select(m => m.Message.EventType));
        Assert.Equal(["AgentEvent_Ringing"], ringing.Received.Select(m => m.Message.EventType));
        Assert.Equal(6, everything.Received.Count);
    }
}
