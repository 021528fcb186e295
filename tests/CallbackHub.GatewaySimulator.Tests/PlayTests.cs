using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CallbackHub.GatewaySimulator.Play;

namespace CallbackHub.GatewaySimulator.Tests;

public sealed class PlayTests
{
    [Fact]
    public async Task Plays_agent_days_at_the_chosen_rate_for_push_agents()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:MaxEventsPerPush"] = "50" });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await simulator.SignInPushAsync("1002", receiver.Url);
        using var pollAgent = await simulator.SignInAsync("1003");
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the sign-in pushes");

        await simulator.State.StartPlayAsync(new PlaySettings(EventsPerSecond: 20, Seed: 7));
        await simulator.Time.AdvanceUntilAsync(() => simulator.State.PlayStatus.EventsPlayed >= 40, TimeSpan.FromMilliseconds(100), "40 played events", maxSteps: 100, settleMilliseconds: 20);
        var status = await simulator.State.StopPlayAsync();

        Assert.False(status.Running);
        Assert.InRange(status.EventsPlayed, 40, 41);
        await Eventually.HoldsAsync(() => receiver.Received.Sum(p => p.EventTypes.Count) == 4 + status.EventsPlayed, "every played event");
        var played = receiver.Received.Skip(2).SelectMany(p => JsonDocument.Parse(p.Body).RootElement.GetProperty("eventList").EnumerateArray().Select(e => e.Clone())).ToList();
        Assert.All(played, e => Assert.True(e.TryGetProperty("eventGenTime", out _)));
        Assert.Equal(["1001", "1002"], played.Select(e => e.GetProperty("workNo").GetString()).Distinct().Order());
        var first = played.Where(e => e.GetProperty("workNo").GetString() == "1001").Take(4).ToList();
        Assert.Equal("AgentEvent_Ringing", first[0].GetProperty("eventType").GetString());
        Assert.Equal("70001", first[0].GetProperty("content").GetProperty("called").GetString());
        Assert.Equal("AgentEvent_Talking", first[1].GetProperty("eventType").GetString());
        var release = played.First(e => e.GetProperty("eventType").GetString() == "AgentEvent_Call_Release");
        Assert.Equal(JsonValueKind.String, release.GetProperty("content").ValueKind);
    }

    [Fact]
    public async Task Plays_only_for_the_chosen_agent_range()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        await simulator.SignInPushAsync("1001", receiver.Url);
        await simulator.SignInPushAsync("2001", receiver.Url);
        await Eventually.HoldsAsync(() => simulator.State.GetPushes().Count == 2, "the sign-in pushes");

        await simulator.State.StartPlayAsync(new PlaySettings(EventsPerSecond: 10, Agents: 5, FirstAgentId: 2000));
        await simulator.Time.AdvanceUntilAsync(() => simulator.State.PlayStatus.EventsPlayed >= 10, TimeSpan.FromMilliseconds(100), "10 played events", maxSteps: 100, settleMilliseconds: 20);
        await simulator.State.StopPlayAsync();

        await Eventually.HoldsAsync(() => simulator.State.GetAgent("2001")!.Queued == 0, "delivery");
        Assert.Equal(1, simulator.State.GetAgent("1001")!.Pushed);
        Assert.True(simulator.State.GetAgent("2001")!.Acknowledged > 1);
    }

    [Fact]
    public async Task Starts_and_stops_over_http_and_from_configuration()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:Play:EventsPerSecond"] = "5" });
        var atBoot = simulator.State.PlayStatus;

        using var stopped = await simulator.Client.DeleteAsync("/simulator/play");
        using var invalid = await simulator.Client.PostAsJsonAsync("/simulator/play", new { eventsPerSecond = 0 });
        using var started = await simulator.Client.PostAsJsonAsync("/simulator/play", new { eventsPerSecond = 50, agents = 10, firstAgentId = 3001 });
        var status = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/play");

        Assert.True(atBoot.Running);
        Assert.Equal(5, atBoot.Settings!.EventsPerSecond);
        Assert.False((await stopped.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("running").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        Assert.True(status.GetProperty("running").GetBoolean());
        Assert.Equal(3001, status.GetProperty("settings").GetProperty("firstAgentId").GetInt32());
    }
}
