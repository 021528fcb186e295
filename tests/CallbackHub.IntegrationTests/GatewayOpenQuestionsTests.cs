using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.Agents;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The keeper against each answer the gateway's documentation leaves open (docs/gateway-protocol.md §10), and against
/// its own faults: one broken agent, a lease that moves while a token is on its way. Simulated time, keeper by hand.
/// </summary>
public sealed class GatewayOpenQuestionsTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private const int RosterAgent = 1040;
    private const long GenTime = 1_784_529_722_590;
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(2);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Sessions:KeeperEnabled"] = "false",
        ["Sessions:LeaseDuration"] = LeaseDuration.ToString(),
        ["Sessions:KeeperInterval"] = "00:00:01",
        ["Agents:0:AgentId"] = $"{RosterAgent}",
        ["Agents:0:Password"] = "",
        ["Agents:0:PhoneNumber"] = "88040",
        ["Agents:0:Skills:Auto"] = "true",
    };

    protected override IReadOnlyDictionary<string, string?> GatewaySettings => new Dictionary<string, string?>
    {
        [$"Simulator:Accounts:{RosterAgent}:Password"] = "",
        // An older gateway: events without eventGenTime, so two sign-ins push byte-identical batches.
        ["Simulator:IncludeEventGenTime"] = "false",
        [$"Simulator:Accounts:{RosterAgent}:Skills:0"] = "7",
        [$"Simulator:Accounts:{RosterAgent}:Skills:1"] = "9",
    };

    protected override void ConfigureHub(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(_clock);

    protected override void ConfigureGateway(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(_clock);

    private SessionKeeper Keeper => Hub.App.Services.GetRequiredService<SessionKeeper>();

    [Fact]
    public async Task A_gateway_that_never_adopts_heartbeat_tokens_has_no_push_refused_for_an_hour()
    {
        await SwitchAsync(new { heartbeatServiceToken = "Ignore" });
        var signInToken = await SignInAsync();
        var refused = new List<int>();

        for (var minute = 0; minute < 60; minute++)
        {
            await AdvanceAsync(TimeSpan.FromSeconds(30));
            await AdvanceAsync(TimeSpan.FromSeconds(30));
            // The gateway pushes with the token it was signed in with, whatever the heartbeats carried.
            var (status, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work", eventGenTime: GenTime + minute)]);
            if (status != 200)
            {
                refused.Add(minute);
            }
        }

        Assert.Empty(refused);
        var agent = await Gateway.GetAgentAsync(Agent);
        Assert.Equal(signInToken, agent["serviceToken"]!.GetValue<string>());
        Assert.True(agent["signedIn"]!.GetValue<bool>());
        // One new token went out and was never seen in a push: no more are made, so at most two are ever accepted.
        var rotations = (await HandshakesAsync(Agent)).Count(h => h!["headers"]!.AsObject().ContainsKey("service_token"));
        Assert.Equal(1, rotations);
    }

    [Fact]
    public async Task A_gateway_that_adopts_heartbeat_tokens_retires_the_old_one_after_the_overlap()
    {
        var signInToken = await SignInAsync();
        await AdvanceAsync(TimeSpan.FromSeconds(30));
        await AdvanceAsync(TimeSpan.FromSeconds(30)); // the rotation goes out on this heartbeat
        var (withNew, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready")]);
        var (oldWithinOverlap, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")], serviceToken: signInToken);
        _clock.Advance(TimeSpan.FromSeconds(151)); // past Sessions__TokenOverlap (2.5 min) after the new token was seen
        var (oldAfterOverlap, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready", eventGenTime: GenTime)], serviceToken: signInToken);

        Assert.NotEqual(signInToken, await Gateway.ServiceTokenAsync(Agent));
        Assert.Equal(200, withNew);
        Assert.Equal(200, oldWithinOverlap);
        Assert.Equal(401, oldAfterOverlap);
    }

    [Fact]
    public async Task Already_signed_in_on_an_automatic_sign_in_resumes_the_live_session_and_keeps_its_token()
    {
        await TickAsync(); // the roster agent signs in
        var token = await Gateway.ServiceTokenAsync(RosterAgent);
        var guid = (await Gateway.GetAgentAsync(RosterAgent))["guid"]!.GetValue<string>();
        // We believe the session lost (a false alarm: the gateway still has it).
        await ExecuteAsync($"UPDATE agent_sessions SET state = 'lost', next_sign_in_at = now() - interval '1 minute' WHERE agent_id = {RosterAgent}");

        await TickAsync();                           // re-sign-in: answered 100-002
        var resumed = await SessionAsync(RosterAgent);
        await AdvanceAsync(TimeSpan.FromSeconds(1)); // the resumed session's heartbeat, with the Guid it had
        var (push, _) = await Gateway.PushOnceAsync(RosterAgent, [Event("AgentState_Ready")]);

        Assert.Equal("active", resumed["state"]!.GetValue<string>());
        Assert.Contains("resumed", resumed["lastError"]!.GetValue<string>());
        Assert.Equal(200, push);
        Assert.Equal(token, await Gateway.ServiceTokenAsync(RosterAgent));
        var handshake = (await HandshakesAsync(RosterAgent))[^1]!;
        Assert.Equal(guid, handshake["headers"]!["Guid"]!.GetValue<string>());
        Assert.Equal("active", (await SessionAsync(RosterAgent))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task Skill_queues_are_applied_after_every_sign_in_automatic_ones_included()
    {
        await TickAsync();
        using var dropped = await Gateway.Http.PostAsync($"/simulator/agents/{RosterAgent}/sign-out?reason=test&shutdown=false", null);
        Assert.True(dropped.IsSuccessStatusCode);

        await AdvanceAsync(TimeSpan.FromSeconds(30)); // the heartbeat finds the session gone: lost
        await AdvanceAsync(TimeSpan.FromSeconds(1));  // signed in again, skills again

        var resets = (await Gateway.RequestsAsync(RosterAgent)).Where(r => r!["path"]!.GetValue<string>().Contains("/resetskill/true", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, resets.Count);
        var agent = await Gateway.GetAgentAsync(RosterAgent);
        Assert.True(agent["signedIn"]!.GetValue<bool>());
        Assert.Equal([7, 9], agent["skills"]!.AsArray().Select(s => s!.GetValue<int>()));
        Assert.Null((await SessionAsync(RosterAgent))["lastError"]);
    }

    [Fact]
    public async Task A_sign_in_again_within_the_duplicate_window_is_not_taken_for_a_re_sent_batch()
    {
        await TickAsync(); // signed in: AgentOther_InService, AgentState_Ready
        await Database.WaitForRowsAsync(2, RosterAgent);
        using var dropped = await Gateway.Http.PostAsync($"/simulator/agents/{RosterAgent}/sign-out?reason=test&shutdown=false", null);

        await AdvanceAsync(TimeSpan.FromSeconds(30)); // lost
        await AdvanceAsync(TimeSpan.FromSeconds(1));  // signed in again: the same two events, byte for byte

        var rows = await Database.WaitForRowsAsync(4, RosterAgent);
        Assert.Equal(["AgentOther_InService", "AgentState_Ready", "AgentOther_InService", "AgentState_Ready"], rows.Select(r => r.EventType));
    }

    [Fact]
    public async Task A_sign_in_stays_with_its_instance_while_the_gateway_answers_so_another_instances_round_cannot_lose_it()
    {
        await using var other = await StartHubAsync();
        await SwitchAsync(new { answerLatency = "00:00:05" });
        var signIn = Hub.SignInAsync(Agent);
        await Task.Delay(500);
        // The other instance's round runs while the sign-in waits for the gateway's answer (its own gateway calls wait
        // on the simulated clock too, so it is not awaited before the clock moves).
        var round = other.App.Services.GetRequiredService<SessionKeeper>().TickAsync(CancellationToken.None);
        await Task.Delay(1000);
        for (var i = 0; i < 60 && !(signIn.IsCompleted && round.IsCompleted); i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(100);
        }

        using var response = await signIn;
        await round;

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var session = await SessionAsync(Agent);
        Assert.Equal("active", session["state"]!.GetValue<string>());
        Assert.Equal(Hub.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<SessionKeepingOptions>>().Value.InstanceId,
            session["ownerInstance"]!.GetValue<string>());
    }

    [Fact]
    public async Task One_agent_whose_row_cannot_be_written_does_not_stop_the_others()
    {
        await SignInAsync(1001);
        await SignInAsync(1002);
        await SignInAsync(1003);
        // A database error writing one agent's heartbeat.
        await ExecuteAsync("""
            CREATE FUNCTION refuse_1002() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.agent_id = 1002 AND NEW.last_heartbeat_at IS DISTINCT FROM OLD.last_heartbeat_at THEN RAISE EXCEPTION 'row 1002 is broken'; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_1002 BEFORE UPDATE ON agent_sessions FOR EACH ROW EXECUTE FUNCTION refuse_1002();
            """);

        await AdvanceAsync(TimeSpan.FromSeconds(30));
        await AdvanceAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(2, (await HandshakesAsync(1001)).Count);
        Assert.Equal(2, (await HandshakesAsync(1003)).Count);
        Assert.Equal("active", (await SessionAsync(1001))["state"]!.GetValue<string>());
        Assert.Equal("active", (await SessionAsync(1003))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_lease_that_moves_to_another_instance_while_a_new_token_is_unconfirmed_never_refuses_a_push()
    {
        // The gateway pushes to B (a load balancer in production); A signs the agent in and keeps it.
        await using var b = await StartHubAsync();
        await using var a = await StartHubAsync(callbackBase: b.BaseUri);
        using (var signIn = await a.SignInAsync(Agent))
        {
            signIn.EnsureSuccessStatusCode();
        }

        var signInToken = await Gateway.ServiceTokenAsync(Agent);
        var keeperA = a.App.Services.GetRequiredService<SessionKeeper>();
        var keeperB = b.App.Services.GetRequiredService<SessionKeeper>();
        await Task.Delay(300); // the sign-in's own events, pushed with its token, arrive
        for (var i = 0; i < 2; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(30));
            await keeperA.TickAsync(CancellationToken.None);
            await keeperB.TickAsync(CancellationToken.None);
        }

        var rotated = await Gateway.ServiceTokenAsync(Agent); // on A's second heartbeat; no push has carried it yet

        // A stops without handing the lease back; B takes the agent over when it lapses.
        await keeperA.StopAsync(CancellationToken.None);
        await Task.Delay(LeaseDuration + TimeSpan.FromMilliseconds(500));
        var statuses = new List<int>();
        statuses.Add((await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work", eventGenTime: GenTime)], serviceToken: signInToken)).Status);
        for (var i = 0; i < 8; i++) // 4 minutes: past the old token's overlap, so the next rotation comes
        {
            _clock.Advance(TimeSpan.FromSeconds(30));
            await keeperB.TickAsync(CancellationToken.None);
            statuses.Add((await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready", eventGenTime: GenTime + 1 + i)])).Status);
        }

        var session = (await b.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{Agent}/session"))!;
        Assert.NotEqual(signInToken, rotated);
        Assert.All(statuses, status => Assert.Equal(200, status));
        Assert.Equal("active", session["state"]!.GetValue<string>());
        Assert.Equal(b.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<SessionKeepingOptions>>().Value.InstanceId,
            session["ownerInstance"]!.GetValue<string>());
        Assert.True((await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>());
        // The rotated token was seen in a push at the new owner, so rotation went on from there.
        Assert.NotEqual(rotated, await Gateway.ServiceTokenAsync(Agent));
    }

    private async Task SwitchAsync(object switches)
    {
        using var response = await Gateway.Http.PatchAsJsonAsync("/simulator/switches", switches);
        response.EnsureSuccessStatusCode();
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private Task TickAsync() => Keeper.TickAsync(CancellationToken.None);

    private async Task AdvanceAsync(TimeSpan by)
    {
        _clock.Advance(by);
        await TickAsync();
    }

    private async Task<JsonObject> SessionAsync(int agentId) =>
        (await Hub.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{agentId}/session"))!;

    private async Task<List<JsonNode?>> HandshakesAsync(int agentId) =>
        (await Gateway.RequestsAsync(agentId)).Where(r => r!["path"]!.GetValue<string>().EndsWith("/handshake", StringComparison.Ordinal)).ToList();
}
