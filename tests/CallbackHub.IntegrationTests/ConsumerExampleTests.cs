using System.Collections.Concurrent;
using CallbackHub.Contracts;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace CallbackHub.IntegrationTests;

/// <summary>The README's MassTransit consumer, as a downstream team would write it, receives what it subscribed to.</summary>
public sealed class ConsumerExampleTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    [Fact]
    public async Task A_MassTransit_consumer_bound_to_AgentState_receives_typed_state_events_only()
    {
        var received = new ConcurrentQueue<AgentEventReceived>();
        var uri = new Uri(Broker);
        await using var provider = new ServiceCollection()
            .AddSingleton(received)
            .AddMassTransit(x =>
            {
                x.AddConsumer<WallboardConsumer>();
                x.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(uri.Host, (ushort)uri.Port, Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')), h =>
                    {
                        h.Username(RabbitMq.Username);
                        h.Password(RabbitMq.Password);
                    });
                    cfg.ReceiveEndpoint("wallboard-agent-states", e =>
                    {
                        e.ConfigureConsumeTopology = false;
                        // MassTransit consumes concurrently by default; one at a time keeps the wire order.
                        e.ConcurrentMessageLimit = 1;
                        e.Bind<AgentEventReceived>(b =>
                        {
                            b.ExchangeType = "topic";
                            b.RoutingKey = "AgentState.#";
                        });
                        e.ConfigureConsumer<WallboardConsumer>(context);
                    });
                });
            })
            .BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync();
        try
        {
            await SignInAsync();
            // The sign-in's own events (AgentOther_InService, AgentState_Ready) come first; the gateway pushes them on its own.
            await Database.WaitForRowsAsync(2);
            await Gateway.PushOnceAsync(Agent, [Event("AgentEvent_Ringing", new { callid = "1" }), Event("AgentState_Work")]);

            for (var i = 0; i < 200 && received.Count < 2; i++)
            {
                await Task.Delay(50);
            }

            await Task.Delay(300);
            Assert.Equal(["AgentState_Ready", "AgentState_Work"], received.Select(m => m.EventType));
            Assert.All(received, m => Assert.Equal(Agent, m.AgentId));
            Assert.Equal([2L, 4L], received.Select(m => m.Sequence));
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    private sealed class WallboardConsumer(ConcurrentQueue<AgentEventReceived> received) : IConsumer<AgentEventReceived>
    {
        public Task Consume(ConsumeContext<AgentEventReceived> context)
        {
            received.Enqueue(context.Message);
            return Task.CompletedTask;
        }
    }
}
