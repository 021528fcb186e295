using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>The switches for what docs/gateway-protocol.md §10 leaves open, from configuration and at run time.</summary>
public sealed class SwitchesTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Switches_start_from_configuration_and_change_over_http()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushRetry"] = "AppendNewer" });

        var atBoot = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/switches");
        using var patched = await simulator.Client.PatchAsync("/simulator/switches",
            Json("""{"heartbeatServiceToken":"Ignore","pushShutdownOnSignOut":false}"""));
        using var invalid = await simulator.Client.PatchAsync("/simulator/switches", Json("""{"pushRetry":"Sometimes"}"""));
        var after = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/switches");

        Assert.Equal("Adopt", atBoot.GetProperty("heartbeatServiceToken").GetString());
        Assert.Equal("AppendNewer", atBoot.GetProperty("pushRetry").GetString());
        Assert.True(atBoot.GetProperty("pushShutdownOnSignOut").GetBoolean());
        Assert.True(atBoot.GetProperty("pushShutdownOnForceLogin").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal("Ignore", after.GetProperty("heartbeatServiceToken").GetString());
        Assert.Equal("AppendNewer", after.GetProperty("pushRetry").GetString());
        Assert.False(after.GetProperty("pushShutdownOnSignOut").GetBoolean());
        Assert.Equal(HeartbeatTokenHandling.Ignore, simulator.State.Switches.HeartbeatServiceToken);
    }

    [Fact]
    public async Task Ignored_heartbeat_tokens_leave_pushes_on_the_sign_in_token()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:HeartbeatServiceToken"] = "Ignore" });
        var guid = await simulator.SignInPushAsync("1001", receiver.Url, "token1");
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");

        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid, ("service_token", "token2"));
        using var badToken = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid, ("service_token", "bad_token"));
        simulator.State.Enqueue("1001", [new SimulatedEvent("AgentState_Ready")]);

        Assert.Equal("0", (await Gateway.ReadAsync(heartbeat)).Retcode);
        Assert.Equal("100-001", (await Gateway.ReadAsync(badToken)).Retcode);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the second push");
        Assert.Equal("token1", receiver.Received.Last().ServiceToken);
        var agent = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/agents/1001");
        Assert.Equal("token1", agent.GetProperty("serviceToken").GetString());
        Assert.Equal("token2", agent.GetProperty("heartbeatServiceToken").GetString());
    }

    [Fact]
    public async Task Heartbeat_tokens_are_adopted_again_once_switched_back_at_run_time()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:HeartbeatServiceToken"] = "Ignore" });
        var guid = await simulator.SignInPushAsync("1001", receiver.Url, "token1");
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");

        simulator.State.UpdateSwitches(new SwitchesUpdate(HeartbeatServiceToken: HeartbeatTokenHandling.Adopt));
        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid, ("service_token", "token3"));
        simulator.State.Enqueue("1001", [new SimulatedEvent("AgentState_Ready")]);

        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the second push");
        Assert.Equal("token3", receiver.Received.Last().ServiceToken);
    }

    [Theory]
    [InlineData("Identical")]
    [InlineData("AppendNewer")]
    public async Task A_retry_resends_the_failed_batch_as_the_switch_says(string mode)
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        var answers = 0;
        receiver.Answer = _ => Interlocked.Increment(ref answers) == 1 ? (503, "busy") : (200, CallbackReceiver.Success);
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushRetry"] = mode });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 1, "the failed first push");

        simulator.State.Enqueue("1001", [new SimulatedEvent("Event1"), new SimulatedEvent("Event2")]);
        await simulator.Time.AdvanceUntilAsync(() => simulator.State.GetAgent("1001")!.Queued == 0, 10 * Second, "delivery of every event");

        var attempts = simulator.State.GetPushes("1001");
        var received = receiver.Received.Select(p => p.EventTypes).ToList();
        Assert.Equal((1, 2), (attempts[0].Attempt, attempts[1].Attempt));
        Assert.Equal(attempts[0].BatchId, attempts[1].BatchId);
        if (mode == "Identical")
        {
            Assert.Equal(attempts[0].Body, attempts[1].Body);
            Assert.Equal([["AgentOther_InService", "AgentState_Ready"], ["AgentOther_InService", "AgentState_Ready"], ["Event1", "Event2"]], received);
        }
        else
        {
            Assert.StartsWith(attempts[0].Body[..^2], attempts[1].Body, StringComparison.Ordinal);
            Assert.Equal([["AgentOther_InService", "AgentState_Ready"], ["AgentOther_InService", "AgentState_Ready", "Event1", "Event2"]], received);
        }
    }

    [Fact]
    public async Task Appended_retries_stay_within_the_batch_size()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        var answers = 0;
        receiver.Answer = _ => Interlocked.Increment(ref answers) == 1 ? (503, "busy") : (200, CallbackReceiver.Success);
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushRetry"] = "AppendNewer", ["Simulator:MaxEventsPerPush"] = "3" });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 1, "the failed first push");

        simulator.State.Enqueue("1001", [new SimulatedEvent("Event1"), new SimulatedEvent("Event2")]);
        await simulator.Time.AdvanceUntilAsync(() => simulator.State.GetAgent("1001")!.Queued == 0, 10 * Second, "delivery of every event");

        Assert.Equal(
            [["AgentOther_InService", "AgentState_Ready"], ["AgentOther_InService", "AgentState_Ready", "Event1"], ["Event2"]],
            receiver.Received.Select(p => p.EventTypes).ToList());
    }

    [Theory]
    [InlineData("logout")]
    [InlineData("forcelogout")]
    [InlineData("forcelogoutwithreason/3")]
    public async Task Without_ShutdownService_on_sign_out_a_logout_pushes_nothing(string route)
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushShutdownOnSignOut"] = "false" });
        var guid = await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => simulator.State.GetAgent("1001")!.Acknowledged == 1, "the sign-in push");

        using var logout = await simulator.SendAsync(HttpMethod.Delete, $"1001/{route}", guid);

        Assert.Equal("0", (await Gateway.ReadAsync(logout)).Retcode);
        var agent = simulator.State.GetAgent("1001")!;
        Assert.False(agent.SignedIn);
        Assert.Equal((0, 1L), (agent.Queued, agent.Pushed));
        Assert.Single(receiver.Received);
    }

    [Fact]
    public async Task Without_ShutdownService_on_sign_out_a_heartbeat_timeout_pushes_nothing()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushShutdownOnSignOut"] = "false" });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => simulator.State.GetAgent("1001")!.Acknowledged == 1, "the sign-in push");

        simulator.Time.Advance(120 * Second);

        var agent = simulator.State.GetAgent("1001")!;
        Assert.Equal("heartbeat-timeout", agent.SignOutReason);
        Assert.Equal((0, 1L), (agent.Queued, agent.Pushed));
    }

    [Fact]
    public async Task A_control_api_sign_out_can_decide_about_ShutdownService_for_itself()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushShutdownOnSignOut"] = "false" });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await simulator.SignInPushAsync("1002", receiver.Url);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the sign-in pushes");

        using var silent = await simulator.Client.PostAsync("/simulator/agents/1001/sign-out", null);
        using var announced = await simulator.Client.PostAsync("/simulator/agents/1002/sign-out?shutdown=true", null);

        Assert.Equal(HttpStatusCode.OK, silent.StatusCode);
        Assert.Equal(HttpStatusCode.OK, announced.StatusCode);
        Assert.Equal(0, simulator.State.GetAgent("1001")!.Queued);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 3, "the ShutdownService push of 1002");
        Assert.Equal(["AgentOther_ShutdownService"], receiver.Received.Last().EventTypes);
        Assert.Contains("\"workNo\":\"1002\"", receiver.Received.Last().Body, StringComparison.Ordinal);
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
