using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.Agents;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// Keeping sessions the way the gateway expects, on a simulated clock shared by CallbackHub and the gateway
/// simulator: no test sleeps through a heartbeat interval; time moves when the test says so.
/// </summary>
public sealed class SessionKeepingTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private const int RosterAgent = 1020;
    private const int LockedAgent = 1010;
    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(2);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Sessions:KeeperEnabled"] = "false", // the test drives the keeper, one tick at a time
        // Leases run on the database's clock, not the simulated one: short, so that a test can wait one out.
        ["Sessions:LeaseDuration"] = LeaseDuration.ToString(),
        ["Sessions:KeeperInterval"] = "00:00:01",
        ["Agents:0:AgentId"] = $"{RosterAgent}",
        ["Agents:0:Password"] = "roster-password",
        ["Agents:0:PhoneNumber"] = "88020",
    };

    protected override IReadOnlyDictionary<string, string?> GatewaySettings => new Dictionary<string, string?>
    {
        [$"Simulator:Accounts:{LockedAgent}:Locked"] = "true",
    };

    protected override void ConfigureHub(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(_clock);

    protected override void ConfigureGateway(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(_clock);

    [Fact]
    public async Task Heartbeats_go_out_on_time_and_every_new_Guid_is_adopted()
    {
        await SignInAsync();
        var signInGuid = await GatewayGuidAsync(Agent);

        await AdvanceAsync(TimeSpan.FromSeconds(29));
        Assert.Empty(await HandshakesAsync(Agent));
        await AdvanceAsync(TimeSpan.FromSeconds(1));
        var first = Assert.Single(await HandshakesAsync(Agent));
        Assert.Equal(signInGuid, Header(first, "Guid"));

        // The simulator rotates the Guid on the first heartbeat 60 s after it was issued (dynamic mode).
        for (var i = 0; i < 10; i++)
        {
            await AdvanceAsync(TimeSpan.FromSeconds(30));
        }

        var handshakes = await HandshakesAsync(Agent);
        Assert.Equal(11, handshakes.Count);
        var current = await GatewayGuidAsync(Agent);
        Assert.NotEqual(signInGuid, current);
        Assert.Equal(current, Header(handshakes[^1], "Guid"));
        Assert.True(handshakes.Select(h => Header(h, "Guid")).Distinct().Count() >= 4, "the Guid rotated every minute");
        Assert.Equal("active", (await SessionAsync(Agent))["state"]!.GetValue<string>());
        Assert.True((await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>());
    }

    [Fact]
    public async Task The_token_is_rotated_on_a_heartbeat_and_the_old_one_is_refused_only_after_the_overlap()
    {
        var original = await SignInAsync();

        await AdvanceAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(original, await Gateway.ServiceTokenAsync(Agent));
        await AdvanceAsync(TimeSpan.FromSeconds(30));
        var rotated = await Gateway.ServiceTokenAsync(Agent);
        var (withinOverlap, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")], serviceToken: original);
        var (withNew, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready")]);
        _clock.Advance(TimeSpan.FromSeconds(151)); // past Sessions__TokenOverlap (2.5 min) after the new token was seen
        var (afterOverlap, body) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")], serviceToken: original);

        Assert.NotEqual(original, rotated);
        Assert.Matches("^[A-Za-z0-9]{40}$", rotated);
        Assert.Equal(rotated, Header((await HandshakesAsync(Agent))[^1], "service_token"));
        Assert.Equal(200, withinOverlap);
        Assert.Equal(200, withNew);
        Assert.Equal(401, afterOverlap);
        Assert.Equal("100-001", body!["retcode"]!.GetValue<string>());
        Assert.NotNull((await SessionAsync(Agent))["lastTokenRotationAt"]);
    }

    [Fact]
    public async Task The_roster_is_signed_in_at_start_and_signed_in_again_after_the_gateway_signs_it_out()
    {
        await TickAsync();
        var firstToken = await Gateway.ServiceTokenAsync(RosterAgent);
        Assert.Equal("active", (await SessionAsync(RosterAgent))["state"]!.GetValue<string>());

        // The gateway drops the session (pushing AgentOther_ShutdownService as its last event).
        using var dropped = await Gateway.Http.PostAsync($"/simulator/agents/{RosterAgent}/sign-out?reason=test", null);
        dropped.EnsureSuccessStatusCode();
        await WaitForStateAsync(RosterAgent, "lost");
        await AdvanceAsync(TimeSpan.FromSeconds(1));

        Assert.Equal("active", (await SessionAsync(RosterAgent))["state"]!.GetValue<string>());
        Assert.True((await Gateway.GetAgentAsync(RosterAgent))["signedIn"]!.GetValue<bool>());
        Assert.NotEqual(firstToken, await Gateway.ServiceTokenAsync(RosterAgent));
        Assert.Equal(2, (await Gateway.RequestsAsync(RosterAgent)).Count(r => r!["method"]!.GetValue<string>() == "PUT"));
    }

    [Fact]
    public async Task A_sign_in_interrupted_by_a_dead_instance_is_taken_as_lost_and_made_again()
    {
        // An instance died between claiming the roster agent's session and hearing the gateway's answer.
        var started = _clock.GetUtcNow() - TimeSpan.FromHours(1);
        await EventRows.ScalarAsync<int>(Database,
            $"INSERT INTO agent_sessions (agent_id, state, sign_in_started_at, updated_at, sign_in_failures) VALUES ({RosterAgent}, 'signing-in', '{started:O}', '{started:O}', 0)");

        await TickAsync();                         // the roster leaves a sign-in under way alone…
        await AdvanceAsync(TimeSpan.FromSeconds(1)); // …but one this old is dead: lost, then signed in again

        Assert.Equal("active", (await SessionAsync(RosterAgent))["state"]!.GetValue<string>());
        Assert.True((await Gateway.GetAgentAsync(RosterAgent))["signedIn"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_heartbeat_answered_not_signed_in_marks_the_session_lost_with_the_reason()
    {
        await SignInAsync();
        // An instance that does not know the agent's password (it was signed in through another one's API)…
        await Hub.DisposeAsync();
        await using var other = await StartHubAsync();
        // …and a gateway that dropped the session where no push could tell (the old callback is gone).
        using var dropped = await Gateway.Http.PostAsync($"/simulator/agents/{Agent}/sign-out?reason=test", null);

        // Past the first instance's lease: it never handed it back. And a heartbeat is due.
        await Task.Delay(LeaseDuration + TimeSpan.FromMilliseconds(500));
        _clock.Advance(TimeSpan.FromSeconds(31));
        await other.App.Services.GetRequiredService<SessionKeeper>().TickAsync(CancellationToken.None);

        var session = (await other.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{Agent}/session"))!;
        Assert.Equal("lost", session["state"]!.GetValue<string>());
        Assert.Contains("100-006", session["lastError"]!.GetValue<string>());
        // Without the password this instance cannot sign the agent in again, and does not try.
        Assert.Single(await Gateway.RequestsAsync(Agent), r => r!["method"]!.GetValue<string>() == "PUT");
    }

    [Fact]
    public async Task A_gateway_unreachable_for_its_two_minute_window_means_the_session_is_lost()
    {
        await SignInAsync();
        await Gateway.App.StopAsync(); // the gateway goes away; every heartbeat now fails to connect

        for (var i = 0; i < 3; i++)
        {
            await AdvanceAsync(TimeSpan.FromSeconds(30));
        }

        var meanwhile = await SessionAsync(Agent);
        await AdvanceAsync(TimeSpan.FromSeconds(30)); // 120 s since the last answered heartbeat

        Assert.Equal("active", meanwhile["state"]!.GetValue<string>());
        Assert.Contains("Heartbeat failed", meanwhile["lastError"]!.GetValue<string>());
        var session = await SessionAsync(Agent);
        Assert.Equal("lost", session["state"]!.GetValue<string>());
        Assert.Contains("No heartbeat was answered", session["lastError"]!.GetValue<string>());
    }

    [Fact]
    public async Task Already_signed_in_is_a_clear_error_unless_force_login_is_allowed()
    {
        using var elsewhere = await Gateway.Http.PutAsync($"/agentgateway/resource/onlineagent/{Agent}",
            new StringContent("""{"password":"p","phonenum":"1"}""", System.Text.Encoding.UTF8, "application/json"));

        using var refused = await Hub.SignInAsync(Agent);
        var problem = await refused.Content.ReadAsStringAsync();
        await using var forcing = await StartHubAsync(new Dictionary<string, string?> { ["Sessions:ForceLogin"] = "true" });
        using var forced = await forcing.SignInAsync(Agent);

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("100-002", problem);
        Assert.Contains("Sessions__ForceLogin", problem);
        Assert.Equal(HttpStatusCode.OK, forced.StatusCode);
        Assert.Contains((await Gateway.RequestsAsync(Agent)), r => r!["path"]!.GetValue<string>().EndsWith("/forcelogin", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_end_of_the_replaced_session_after_a_forced_sign_in_does_not_drop_the_new_one()
    {
        await using var hub = await StartHubAsync(new Dictionary<string, string?> { ["Sessions:ForceLogin"] = "true" });
        using (var signIn = await hub.SignInAsync(Agent))
        {
            signIn.EnsureSuccessStatusCode();
        }

        // We wrongly believe the session gone (the gateway still has it): the keeper signs in, is told
        // "already signed in", forces — and the gateway ends the old session with AgentOther_ShutdownService.
        await EventRows.ScalarAsync<int>(Database, $"UPDATE agent_sessions SET state = 'lost', next_sign_in_at = now() - interval '1 hour' WHERE agent_id = {Agent}");
        _clock.Advance(TimeSpan.FromSeconds(1));
        var keeper = hub.App.Services.GetRequiredService<SessionKeeper>();
        await keeper.TickAsync(CancellationToken.None);
        await Database.WaitForRowsAsync(5, Agent); // InService, Ready, ShutdownService (old), InService, Ready
        for (var i = 0; i < 4; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(30));
            await keeper.TickAsync(CancellationToken.None);
        }

        var types = (await EventRows.ReadAsync(Database, Agent)).Select(r => r.EventType).ToList();
        Assert.Contains("AgentOther_ShutdownService", types);
        var session = (await hub.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{Agent}/session"))!;
        Assert.Equal("active", session["state"]!.GetValue<string>());
        Assert.Single(await Gateway.RequestsAsync(Agent), r => r!["path"]!.GetValue<string>().EndsWith("/forcelogin", StringComparison.Ordinal));
        Assert.True((await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_locked_account_is_reported_and_not_retried_in_a_loop()
    {
        await using var hub = await StartHubAsync(new Dictionary<string, string?>
        {
            ["Agents:1:AgentId"] = $"{LockedAgent}",
            ["Agents:1:Password"] = "whatever",
            ["Agents:1:PhoneNumber"] = "88010",
        });
        var keeper = hub.App.Services.GetRequiredService<SessionKeeper>();

        for (var i = 0; i < 10; i++)
        {
            await keeper.TickAsync(CancellationToken.None);
            _clock.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.Single(await Gateway.RequestsAsync(LockedAgent));
        var session = (await hub.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{LockedAgent}/session"))!;
        Assert.Equal("failed", session["state"]!.GetValue<string>());
        Assert.Contains("110-016", session["lastError"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_restarted_instance_resumes_sessions_without_signing_in_again()
    {
        await SignInAsync();
        await Hub.DisposeAsync(); // graceful, but with Sessions:SignOutOnShutdown off (below) the agent stays in

        await using var restarted = await StartHubAsync(new Dictionary<string, string?> { ["Sessions:SignOutOnShutdown"] = "false" });
        // The stopped instance's lease lapses; then the new one takes the session over, its heartbeat due.
        await Task.Delay(LeaseDuration + TimeSpan.FromMilliseconds(500));
        _clock.Advance(TimeSpan.FromSeconds(31));
        await restarted.App.Services.GetRequiredService<SessionKeeper>().TickAsync(CancellationToken.None);

        var requests = await Gateway.RequestsAsync(Agent);
        Assert.Single(requests, r => r!["method"]!.GetValue<string>() == "PUT");
        Assert.Single(requests, r => r!["path"]!.GetValue<string>().EndsWith("/handshake", StringComparison.Ordinal));
        Assert.True((await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>());
    }

    private async Task AdvanceAsync(TimeSpan by)
    {
        _clock.Advance(by);
        await TickAsync();
    }

    private Task TickAsync() => Hub.App.Services.GetRequiredService<SessionKeeper>().TickAsync(CancellationToken.None);

    private async Task<string> GatewayGuidAsync(int agentId) => (await Gateway.GetAgentAsync(agentId))["guid"]!.GetValue<string>();

    private async Task<List<JsonNode>> HandshakesAsync(int agentId) =>
        [.. (await Gateway.RequestsAsync(agentId)).Where(r => r!["path"]!.GetValue<string>().EndsWith("/handshake", StringComparison.Ordinal)).Select(r => r!)];

    private static string? Header(JsonNode request, string name) =>
        request["headers"]!.AsObject().FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value?.ToString();

    private async Task<JsonObject> SessionAsync(int agentId) =>
        (await Hub.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{agentId}/session"))!;

    private async Task WaitForStateAsync(int agentId, string state)
    {
        for (var i = 0; i < 200 && (await SessionAsync(agentId))["state"]!.GetValue<string>() != state; i++)
        {
            await Task.Delay(50);
        }
    }
}
