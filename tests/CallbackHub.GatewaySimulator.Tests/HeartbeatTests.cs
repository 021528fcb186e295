using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CallbackHub.GatewaySimulator.Agents;
using Microsoft.Extensions.DependencyInjection;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>The heartbeat timeout (a run-time switch) and the heartbeat observations of /simulator/heartbeats.</summary>
public sealed class HeartbeatTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    // The Guid from sign-in stays valid, so the tests can heartbeat with it however long they run.
    private static Dictionary<string, string?> Static => new() { ["Simulator:AuthMode"] = "Static" };

    [Fact]
    public async Task A_shorter_timeout_set_at_run_time_applies_to_agents_already_signed_in()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");

        using var patched = await simulator.Client.PatchAsync("/simulator/switches", Json("""{"heartbeatTimeout":"00:00:30"}"""));
        simulator.Time.Advance(29 * Second);
        var stillIn = simulator.State.GetAgent("1001")!.SignedIn;
        simulator.Time.Advance(Second);

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.True(stillIn);
        Assert.Equal("heartbeat-timeout", simulator.State.GetAgent("1001")!.SignOutReason);
    }

    [Fact]
    public async Task A_longer_timeout_set_at_run_time_keeps_silent_agents_signed_in()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        simulator.Time.Advance(100 * Second);

        simulator.State.UpdateSwitches(new SwitchesUpdate(HeartbeatTimeout: TimeSpan.FromMinutes(5)));
        simulator.Time.Advance(199 * Second);
        var stillIn = simulator.State.GetAgent("1001")!.SignedIn;
        simulator.Time.Advance(Second);

        Assert.True(stillIn);
        Assert.False(simulator.State.GetAgent("1001")!.SignedIn);
        Assert.Throws<ArgumentException>(() => simulator.State.UpdateSwitches(new SwitchesUpdate(HeartbeatTimeout: TimeSpan.Zero)));
    }

    [Fact]
    public async Task Reports_heartbeat_gaps_and_timeouts_per_agent_and_in_summary()
    {
        await using var simulator = await SimulatorHost.StartAsync(Static);
        var a = await GuidOfSignInAsync(simulator, "1001");
        var b = await GuidOfSignInAsync(simulator, "1002");

        await AdvanceAndBeatAsync(simulator, 20, ("1002", b));
        await AdvanceAndBeatAsync(simulator, 10, ("1001", a));
        await AdvanceAndBeatAsync(simulator, 30, ("1001", a));
        await AdvanceAndBeatAsync(simulator, 35, ("1001", a));
        simulator.Time.Advance(45 * Second); // 1002 has been silent for 120 s now

        var summary = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/heartbeats?details=true");
        var one = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/heartbeats/1001");
        using var unknown = await simulator.Client.GetAsync("/simulator/heartbeats/1003");

        Assert.Equal(2, summary.GetProperty("agents").GetInt32());
        Assert.Equal(1, summary.GetProperty("signedIn").GetInt32());
        Assert.Equal(4, summary.GetProperty("heartbeats").GetInt64());
        Assert.Equal(2, summary.GetProperty("agentsWithGaps").GetInt32());
        Assert.Equal(35, summary.GetProperty("maxGapSeconds").GetDouble());
        Assert.Equal(20, summary.GetProperty("p50MaxGapSeconds").GetDouble());
        Assert.Equal(35, summary.GetProperty("p99MaxGapSeconds").GetDouble());
        Assert.Equal(45, summary.GetProperty("maxOpenGapSeconds").GetDouble());
        Assert.Equal(1, summary.GetProperty("signedOutByTimeout").GetInt32());
        Assert.Equal(1, summary.GetProperty("timeoutSignOuts").GetInt64());
        Assert.Equal(120, summary.GetProperty("heartbeatTimeoutSeconds").GetDouble());
        Assert.Equal(
            [(20, 1L), (30, 2L), (35, 1L)],
            summary.GetProperty("gapHistogram").EnumerateArray().Select(g => (g.GetProperty("fromSeconds").GetInt32(), g.GetProperty("count").GetInt64())));
        Assert.Equal(["1001", "1002"], summary.GetProperty("details").EnumerateArray().Select(d => d.GetProperty("agentId").GetString()));

        Assert.Equal(3, one.GetProperty("heartbeats").GetInt64());
        Assert.Equal(35, one.GetProperty("maxGapSeconds").GetDouble());
        Assert.Equal(45, one.GetProperty("openGapSeconds").GetDouble());
        Assert.Equal(
            [30, 60, 95],
            one.GetProperty("heartbeatTimes").EnumerateArray().Select(t => (t.GetDateTimeOffset() - SimulatorHost.Start).TotalSeconds));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Reset_starts_the_observations_afresh_from_now()
    {
        await using var simulator = await SimulatorHost.StartAsync(Static);
        var guid = await GuidOfSignInAsync(simulator, "1001");
        await AdvanceAndBeatAsync(simulator, 50, ("1001", guid));
        simulator.Time.Advance(10 * Second);

        using var reset = await simulator.Client.DeleteAsync("/simulator/heartbeats");
        var afterReset = simulator.State.GetHeartbeats();
        await AdvanceAndBeatAsync(simulator, 25, ("1001", guid));
        var later = simulator.State.GetHeartbeats(details: true);

        Assert.Equal(HttpStatusCode.NoContent, reset.StatusCode);
        Assert.Equal(SimulatorHost.Start + (60 * Second), afterReset.Since);
        Assert.Equal((1, 0L, 0), (afterReset.Agents, afterReset.Heartbeats, afterReset.AgentsWithGaps));
        Assert.Empty(afterReset.GapHistogram);
        Assert.Null(afterReset.Details);
        Assert.Equal((1L, 25.0), (later.Heartbeats, later.MaxGapSeconds));
        Assert.Single(later.Details!.Single().HeartbeatTimes);
    }

    [Fact]
    public async Task Keeps_only_the_newest_heartbeat_times()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:HeartbeatTimesKept"] = "2", ["Simulator:AuthMode"] = "Static" });
        var guid = await GuidOfSignInAsync(simulator, "1001");

        for (var i = 0; i < 4; i++)
        {
            await AdvanceAndBeatAsync(simulator, 30, ("1001", guid));
        }

        var observed = simulator.State.GetHeartbeats("1001")!;
        Assert.Equal(4, observed.Heartbeats);
        Assert.Equal([SimulatorHost.Start + (90 * Second), SimulatorHost.Start + (120 * Second)], observed.HeartbeatTimes);
    }

    [Fact]
    public async Task Twenty_thousand_heartbeating_agents_are_watched_by_one_pass_per_second()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        var lifecycle = simulator.App.Services.GetRequiredService<AgentLifecycle>();
        var guids = new Dictionary<string, string>();
        for (var id = 100_001; id <= 120_000; id++)
        {
            var agentId = id.ToString(CultureInfo.InvariantCulture);
            var outcome = lifecycle.SignIn(agentId, new SignInRequest { Password = "", PhoneNum = agentId }, force: false);
            guids[agentId] = outcome.Guid!;
        }

        simulator.Time.Advance(30 * Second);
        foreach (var (agentId, guid) in guids.Where(g => g.Key != "100001"))
        {
            Assert.True(lifecycle.Heartbeat(agentId, guid, serviceToken: null).Succeeded);
        }

        simulator.Time.Advance(90 * Second);
        var summary = simulator.State.GetHeartbeats();

        Assert.Equal((20_000, 19_999, 19_999L), (summary.Agents, summary.SignedIn, summary.Heartbeats));
        Assert.Equal((1, 30.0, 30.0), (summary.SignedOutByTimeout, summary.P50MaxGapSeconds, summary.P99MaxGapSeconds));
        Assert.Equal("heartbeat-timeout", simulator.State.GetAgent("100001")!.SignOutReason);
    }

    private static async Task<string> GuidOfSignInAsync(SimulatorHost simulator, string agentId)
    {
        using var response = await simulator.SignInAsync(agentId);
        return response.Headers.GetValues("Guid").Single();
    }

    private static async Task AdvanceAndBeatAsync(SimulatorHost simulator, int seconds, (string AgentId, string Guid) agent)
    {
        simulator.Time.Advance(seconds * Second);
        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, $"{agent.AgentId}/handshake", agent.Guid);
        Assert.Equal("0", (await Gateway.ReadAsync(heartbeat)).Retcode);
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
