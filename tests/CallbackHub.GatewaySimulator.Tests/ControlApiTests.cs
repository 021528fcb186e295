using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Tests;

public sealed class ControlApiTests
{
    [Fact]
    public async Task Shows_agents_with_session_and_push_state()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await simulator.SignInPushAsync("1001", receiver.Url, "token1");
        await Eventually.HoldsAsync(() => simulator.State.GetAgent("1001")!.Acknowledged == 1, "the sign-in push");

        var agents = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/agents");
        var agent = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/agents/1001");
        using var unknown = await simulator.Client.GetAsync("/simulator/agents/1002");

        Assert.Equal(1, agents.GetArrayLength());
        Assert.Equal("1001", agent.GetProperty("agentId").GetString());
        Assert.True(agent.GetProperty("signedIn").GetBoolean());
        Assert.Equal("push", agent.GetProperty("mode").GetString());
        Assert.Equal(guid, agent.GetProperty("guid").GetString());
        Assert.Equal(receiver.Url, agent.GetProperty("callBackUri").GetString());
        Assert.Equal("token1", agent.GetProperty("serviceToken").GetString());
        Assert.Equal(1, agent.GetProperty("pushed").GetInt32());
        Assert.Equal(1, agent.GetProperty("acknowledged").GetInt32());
        Assert.Equal(0, agent.GetProperty("failed").GetInt32());
        Assert.Equal(0, agent.GetProperty("queued").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Records_gateway_requests_with_headers_and_raw_body()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        var guid = signIn.Headers.GetValues("Guid").Single();
        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid, ("service_token", "token9"));
        using var other = await simulator.SignInAsync("1002");

        var all = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/requests");
        var mine = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/requests?agentId=1001");

        Assert.Equal(3, all.GetArrayLength());
        Assert.Equal(2, mine.GetArrayLength());
        var recorded = mine[1];
        Assert.Equal("POST", recorded.GetProperty("method").GetString());
        Assert.Equal("/agentgateway/resource/onlineagent/1001/handshake", recorded.GetProperty("path").GetString());
        Assert.Equal(guid, recorded.GetProperty("headers").GetProperty("Guid").GetString());
        Assert.Equal("token9", recorded.GetProperty("headers").GetProperty("service_token").GetString());
        Assert.Equal("0", recorded.GetProperty("retcode").GetString());
        Assert.Contains("\"password\":\"secret1\"", mine[0].GetProperty("body").GetString(), StringComparison.Ordinal);
        Assert.Equal(guid, simulator.State.GetRequests("1001")[1].Headers["guid"]);
    }

    [Fact]
    public async Task Queues_events_over_http_and_reports_pushes()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");

        using var queued = await simulator.Client.PostAsync("/simulator/agents/1001/events", Json(
            """[{"eventType":"AgentEvent_Call_Release","content":"1456403549-15"},{"eventType":"AgentState_SetNotReady_Success","content":{"reason":"200"},"eventGenTime":1784529722590}]"""));
        using var unknown = await simulator.Client.PostAsync("/simulator/agents/1002/events", Json("[]"));

        Assert.Equal(HttpStatusCode.Accepted, queued.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 2, "the queued push");
        Assert.Contains("""{"eventType":"AgentState_SetNotReady_Success","workNo":"1001","eventGenTime":1784529722590,"content":{"reason":"200"}}""",
            receiver.Received.Last().Body, StringComparison.Ordinal);
        var pushes = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/pushes?agentId=1001");
        Assert.Equal(2, pushes.GetArrayLength());
        Assert.True(pushes[1].GetProperty("acknowledged").GetBoolean());
        Assert.Equal(200, pushes[1].GetProperty("httpStatus").GetInt32());
    }

    [Fact]
    public async Task Queueing_for_a_poll_mode_agent_is_a_conflict()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var _ = await simulator.SignInAsync("1001");

        using var response = await simulator.Client.PostAsync("/simulator/agents/1001/events", Json("""[{"eventType":"AgentState_Ready"}]"""));

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
    }

    [Fact]
    public async Task Push_once_over_http_answers_the_callbacks_status_and_body()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        receiver.Answer = push => push.Guid == "forged" ? (401, "denied") : (200, CallbackReceiver.Success);
        await using var simulator = await SimulatorHost.StartAsync();
        await simulator.SignInPushAsync("1001", receiver.Url);

        using var response = await simulator.Client.PostAsync("/simulator/agents/1001/push-once",
            Json("""{"events":[{"eventType":"AgentState_Ready","content":null}],"serviceToken":null,"guid":"forged"}"""));

        var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(401, answer.GetProperty("status").GetInt32());
        Assert.Equal("denied", answer.GetProperty("body").GetString());
        Assert.False(answer.GetProperty("acknowledged").GetBoolean());
    }

    [Fact]
    public async Task Signs_out_and_rotates_guids_on_request()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        var guid = signIn.Headers.GetValues("Guid").Single();

        var rotated = await (await simulator.Client.PostAsync("/simulator/agents/1001/rotate-guid", null)).Content.ReadFromJsonAsync<JsonElement>();
        using var signOut = await simulator.Client.PostAsync("/simulator/agents/1001/sign-out?reason=maintenance", null);
        using var again = await simulator.Client.PostAsync("/simulator/agents/1001/sign-out", null);

        Assert.NotEqual(guid, rotated.GetProperty("guid").GetString());
        Assert.Equal(HttpStatusCode.OK, signOut.StatusCode);
        Assert.Equal("maintenance", simulator.State.GetAgent("1001")!.SignOutReason);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task Reset_forgets_requests_and_pushes()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => simulator.State.GetPushes().Count == 1, "the sign-in push");

        using var reset = await simulator.Client.PostAsync("/simulator/reset", null);

        Assert.Equal(HttpStatusCode.NoContent, reset.StatusCode);
        Assert.Empty(simulator.State.GetRequests());
        Assert.Empty(simulator.State.GetPushes());
        Assert.True(simulator.State.GetAgent("1001")!.SignedIn);
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
