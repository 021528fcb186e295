using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.Agents;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CallbackHub.IntegrationTests;

/// <summary>Sessions over long stretches of simulated time, across instances, and through the gateway's own sign-out.</summary>
public sealed class SessionEnduranceTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private const int RosterAgent = 1030;
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Sessions:KeeperEnabled"] = "false",
        // Leases run on the database's clock, not the simulated one: short, so that a test can wait one out.
        ["Sessions:LeaseDuration"] = "00:00:02",
        ["Sessions:KeeperInterval"] = "00:00:01",
        ["Agents:0:AgentId"] = $"{RosterAgent}",
        ["Agents:0:Password"] = "roster-password",
        ["Agents:0:PhoneNumber"] = "88030",
    };

    protected override void ConfigureHub(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(_clock);

    protected override void ConfigureGateway(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(_clock);

    [Fact]
    public async Task A_roster_agent_stays_in_push_mode_for_an_hour_of_guid_and_token_rotations_with_no_refused_push()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        var keeper = Hub.App.Services.GetRequiredService<SessionKeeper>();
        await keeper.TickAsync(CancellationToken.None);
        var firstGuid = (await Gateway.GetAgentAsync(RosterAgent))["guid"]!.GetValue<string>();
        var firstToken = await Gateway.ServiceTokenAsync(RosterAgent);
        var pushed = 0;

        for (var step = 0; step < 120; step++) // 120 × 30 s = one hour
        {
            _clock.Advance(TimeSpan.FromSeconds(30));
            await keeper.TickAsync(CancellationToken.None);
            await Gateway.EnqueueAsync(RosterAgent, [Event("AgentEvent_Ringing", new { callid = $"c{step}" }), Event("AgentEvent_Call_Release", $"c{step}")]);
            pushed += 2;
            await WaitUntilDeliveredAsync(RosterAgent);
        }

        var agent = await Gateway.GetAgentAsync(RosterAgent);
        Assert.True(agent["signedIn"]!.GetValue<bool>());
        Assert.NotEqual(firstGuid, agent["guid"]!.GetValue<string>());
        Assert.NotEqual(firstToken, agent["serviceToken"]!.GetValue<string>());
        Assert.Equal(0, agent["failed"]!.GetValue<long>());
        var rows = await EventRows.ReadAsync(Database, RosterAgent);
        Assert.Equal(2 + pushed, rows.Count);
        var messages = await consumer.WaitForAsync(rows.Count, TimeSpan.FromSeconds(30));
        Assert.Equal(rows.Count, messages.Count);
        Assert.Equal(rows.Select(r => r.EventId).Order(), messages.Select(m => m.Message.EventId).Order());
        var handshakes = (await Gateway.RequestsAsync(RosterAgent)).Where(r => r!["path"]!.GetValue<string>().EndsWith("/handshake", StringComparison.Ordinal)).ToList();
        Assert.Equal(120, handshakes.Count);
        // A new token once a minute has passed and the one before it was seen in a push and is past its overlap (2.5 min).
        Assert.True(handshakes.Count(h => h!["headers"]!.AsObject().ContainsKey("service_token")) >= 19, "the token is rotated every 3 minutes or so");
    }

    [Fact]
    public async Task When_the_owner_instance_dies_another_takes_the_agent_over_without_a_sign_out_and_without_losing_events()
    {
        // The gateway pushes to "the service" (a load balancer in production): here, always instance B.
        await using var b = await StartHubAsync();
        await using var a = await StartHubAsync(callbackBase: b.BaseUri);
        await using var consumer = await QueueProbe.StartAsync(Broker);
        using (var signIn = await a.SignInAsync(Agent))
        {
            signIn.EnsureSuccessStatusCode();
        }

        var keeperA = a.App.Services.GetRequiredService<SessionKeeper>();
        var keeperB = b.App.Services.GetRequiredService<SessionKeeper>();
        for (var i = 0; i < 4; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(15));
            await keeperA.TickAsync(CancellationToken.None);
            await keeperB.TickAsync(CancellationToken.None);
            await Gateway.EnqueueAsync(Agent, [Event("AgentState_Work"), Event("AgentState_Ready")]);
        }

        var ownerBefore = (await SessionViaAsync(b))["ownerInstance"]!.GetValue<string>();
        // A dies: no more ticks, no goodbye (its keeper never runs again; its lease is left to lapse).
        await a.App.Services.GetRequiredService<SessionKeeper>().StopAsync(CancellationToken.None);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        for (var i = 0; i < 8; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(15));
            await keeperB.TickAsync(CancellationToken.None);
            await Gateway.EnqueueAsync(Agent, [Event("AgentState_Work"), Event("AgentState_Ready")]);
        }

        await WaitUntilDeliveredAsync(Agent);
        var session = await SessionViaAsync(b);
        Assert.NotEqual(ownerBefore, session["ownerInstance"]!.GetValue<string>());
        Assert.Equal("active", session["state"]!.GetValue<string>());
        var agent = await Gateway.GetAgentAsync(Agent);
        Assert.True(agent["signedIn"]!.GetValue<bool>());
        Assert.Null(agent["signOutReason"]?.GetValue<string>());
        Assert.Single(await Gateway.RequestsAsync(Agent), r => r!["method"]!.GetValue<string>() == "PUT");
        var rows = await EventRows.ReadAsync(Database, Agent);
        Assert.Equal(2 + (12 * 2), rows.Count);
        Assert.Equal(Enumerable.Range(1, rows.Count).Select(i => (long)i), rows.Select(r => r.Sequence));
        var messages = await consumer.WaitForAsync(rows.Count, TimeSpan.FromSeconds(30));
        Assert.Equal(rows.Select(r => r.EventId).Order(), messages.Where(m => m.Message.AgentId == Agent).Select(m => m.Message.EventId).Distinct().Order());
    }

    [Fact]
    public async Task The_gateways_forced_sign_out_after_two_minutes_of_failed_pushes_is_seen_as_lost_and_recovered()
    {
        // The gateway cannot reach the callback address (a broken load balancer), while heartbeats go through.
        var unreachable = new Uri($"http://127.0.0.1:{ContainerSupport.FreeTcpPort()}");
        await using var hub = await StartHubAsync(callbackBase: unreachable);
        var keeper = hub.App.Services.GetRequiredService<SessionKeeper>();
        using (var signIn = await hub.SignInAsync(Agent))
        {
            signIn.EnsureSuccessStatusCode();
        }

        for (var i = 1; i <= 14; i++)
        {
            await Task.Delay(300); // let this interval's push attempt fail
            _clock.Advance(TimeSpan.FromSeconds(10));
            await Task.Delay(100);
            if (!(await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>())
            {
                break;
            }

            if (i % 3 == 0)
            {
                await keeper.TickAsync(CancellationToken.None); // heartbeats keep going all along
            }
        }

        var dropped = await Gateway.GetAgentAsync(Agent);
        Assert.False(dropped["signedIn"]!.GetValue<bool>());
        Assert.Equal("push-failures", dropped["signOutReason"]!.GetValue<string>());

        _clock.Advance(TimeSpan.FromSeconds(30));
        await keeper.TickAsync(CancellationToken.None); // the heartbeat learns the session is gone
        var lost = await SessionViaAsync(hub);
        _clock.Advance(TimeSpan.FromSeconds(5));
        await keeper.TickAsync(CancellationToken.None); // and the keeper signs the agent in again

        Assert.Equal("lost", lost["state"]!.GetValue<string>());
        Assert.Contains("100-006", lost["lastError"]!.GetValue<string>());
        Assert.Equal("active", (await SessionViaAsync(hub))["state"]!.GetValue<string>());
        Assert.True((await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>());
        Assert.Equal(2, (await Gateway.RequestsAsync(Agent)).Count(r => r!["method"]!.GetValue<string>() == "PUT"));
    }

    private async Task WaitUntilDeliveredAsync(int agentId)
    {
        for (var i = 0; i < 400; i++)
        {
            var agent = await Gateway.GetAgentAsync(agentId);
            if (agent["queued"]!.GetValue<int>() == 0 && agent["pushed"]!.GetValue<long>() == agent["acknowledged"]!.GetValue<long>() + agent["failed"]!.GetValue<long>())
            {
                return;
            }

            await Task.Delay(10);
        }
    }

    private static async Task<JsonObject> SessionViaAsync(CallbackHubInstance hub, int agentId = Agent) =>
        (await hub.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{agentId}/session"))!;
}
