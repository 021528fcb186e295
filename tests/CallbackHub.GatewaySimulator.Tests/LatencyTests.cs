using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>The answer latency and the 000-007 answer to concurrent calls for one agent.</summary>
public sealed class LatencyTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Agent_calls_are_handled_and_answered_after_the_latency()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:AnswerLatency"] = "00:00:02", ["Simulator:AuthMode"] = "Static" });

        var signIn = simulator.SignInAsync("1001");
        await Task.Delay(200);
        var signedInEarly = simulator.State.GetAgent("1001")?.SignedIn == true;
        await simulator.Time.AdvanceUntilAsync(() => signIn.IsCompleted, Second, "the sign-in answer");
        using var signInResponse = await signIn;
        var guid = signInResponse.Headers.GetValues("Guid").Single();
        var heartbeat = simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid);
        await simulator.Time.AdvanceUntilAsync(() => heartbeat.IsCompleted, Second, "the heartbeat answer");
        using var heartbeatResponse = await heartbeat;

        Assert.False(signedInEarly);
        Assert.Equal("0", (await Gateway.ReadAsync(signInResponse)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(heartbeatResponse)).Retcode);
        var agent = simulator.State.GetAgent("1001")!;
        // Not before the latency; on a busy machine the call may reach the simulator a simulated second or two late.
        Assert.True(agent.SignedInAt >= SimulatorHost.Start + (2 * Second), $"signed in at {agent.SignedInAt:O}");
        Assert.True(agent.LastHeartbeatAt >= agent.SignedInAt + (2 * Second));
    }

    [Fact]
    public async Task Waiting_calls_hold_no_thread_and_the_latency_can_change_at_run_time()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:AuthMode"] = "Static" });
        var guids = new List<string>();
        for (var id = 1001; id <= 1200; id++)
        {
            using var signIn = await simulator.SignInAsync(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            guids.Add(signIn.Headers.GetValues("Guid").Single());
        }

        using var patched = await simulator.Client.PatchAsync("/simulator/switches", Json("""{"answerLatency":"00:01:00"}"""));
        var held = guids.Select((guid, i) => simulator.SendAsync(HttpMethod.Post, $"{1001 + i}/handshake", guid)).ToList();
        await Eventually.HoldsAsync(() => simulator.State.GetRequests().Count(r => r.Path.EndsWith("/handshake", StringComparison.Ordinal)) == 200, "200 held heartbeats");
        var threadsWhileHeld = ThreadPool.ThreadCount;
        var switches = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/switches");
        simulator.Time.Advance(TimeSpan.FromMinutes(1));
        var answers = await Task.WhenAll(held);

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal("00:01:00", switches.GetProperty("answerLatency").GetString());
        Assert.True(threadsWhileHeld < 100, $"{threadsWhileHeld} thread-pool threads while 200 calls waited");
        foreach (var answer in answers)
        {
            Assert.Equal("0", (await Gateway.ReadAsync(answer)).Retcode);
            answer.Dispose();
        }
    }

    [Fact]
    public async Task A_second_call_for_an_agent_before_the_first_is_answered_gets_000_007()
    {
        await using var simulator = await SimulatorHost.StartAsync(new()
        {
            ["Simulator:AnswerLatency"] = "00:00:01",
            ["Simulator:RejectConcurrentCalls"] = "true",
            ["Simulator:AuthMode"] = "Static",
        });
        var guid = await SignInAsync(simulator, "1001");
        var other = await SignInAsync(simulator, "1002");

        var calls = new[]
        {
            simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid),
            simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid),
            simulator.SendAsync(HttpMethod.Post, "1002/handshake", other),
        };
        await Eventually.HoldsAsync(() => calls.Count(c => c.IsCompleted) == 1, "the rejected call, answered at once");
        await simulator.Time.AdvanceUntilAsync(() => calls.All(c => c.IsCompleted), Second, "the other answers");

        var retcodes = new List<string>();
        foreach (var call in calls)
        {
            using var response = await call;
            retcodes.Add((await Gateway.ReadAsync(response)).Retcode);
        }

        Assert.Equal(["0", "000-007"], retcodes.Take(2).Order());
        Assert.Equal("0", retcodes[2]);
        Assert.Contains(simulator.State.GetRequests("1001"), r => r.Retcode == "000-007");
    }

    [Fact]
    public async Task Without_the_switch_concurrent_calls_for_one_agent_are_all_answered()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:AnswerLatency"] = "00:00:01", ["Simulator:AuthMode"] = "Static" });
        var guid = await SignInAsync(simulator, "1001");

        var calls = new[] { simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid), simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid) };
        await simulator.Time.AdvanceUntilAsync(() => calls.All(c => c.IsCompleted), Second, "both answers");

        foreach (var call in calls)
        {
            using var response = await call;
            Assert.Equal("0", (await Gateway.ReadAsync(response)).Retcode);
        }
    }

    private static async Task<string> SignInAsync(SimulatorHost simulator, string agentId)
    {
        var signIn = simulator.SignInAsync(agentId);
        await simulator.Time.AdvanceUntilAsync(() => signIn.IsCompleted, Second, "the sign-in answer");
        using var response = await signIn;
        return response.Headers.GetValues("Guid").Single();
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
