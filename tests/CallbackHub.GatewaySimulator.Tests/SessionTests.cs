namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>Heartbeat, Guid rotation and expiry, updateGuid and sign-out.</summary>
public sealed class SessionTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Dynamic_guid_rotates_on_a_heartbeat_and_the_old_one_expires()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        var first = signIn.Headers.GetValues("Guid").Single();

        simulator.Time.Advance(30 * Second);
        using var early = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", first);
        simulator.Time.Advance(30 * Second);
        using var rotating = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", first);
        var second = SetGuid(rotating);
        simulator.Time.Advance(30 * Second);
        using var oldStillValid = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", first);
        simulator.Time.Advance(31 * Second);
        using var oldExpired = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", first);
        using var newValid = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", second);

        Assert.Equal("0", (await Gateway.ReadAsync(early)).Retcode);
        Assert.Equal(first, SetGuid(early));
        Assert.NotEqual(first, second);
        Assert.Equal("0", (await Gateway.ReadAsync(oldStillValid)).Retcode);
        Assert.Equal(second, SetGuid(oldStillValid));
        Assert.Equal("000-003", (await Gateway.ReadAsync(oldExpired)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(newValid)).Retcode);

        // The second Guid is itself 61 s old by now, so that heartbeat rotated again.
        Assert.NotEqual(second, SetGuid(newValid));
        Assert.Equal(SetGuid(newValid), simulator.State.GetAgent("1001")!.Guid);
    }

    [Fact]
    public async Task Static_guid_never_rotates()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:AuthMode"] = "Static" });
        using var signIn = await simulator.SignInAsync("1001");
        var guid = signIn.Headers.GetValues("Guid").Single();

        for (var i = 0; i < 10; i++)
        {
            simulator.Time.Advance(60 * Second);
            using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid);
            Assert.Equal("0", (await Gateway.ReadAsync(heartbeat)).Retcode);
            Assert.False(heartbeat.Headers.Contains("Set-GUID"));
        }

        using var update = await simulator.SendAsync(HttpMethod.Put, "1001/updateGuid", guid);
        Assert.Equal(guid, (await Gateway.ReadAsync(update)).Result!.Value.GetProperty("guid").GetString());
    }

    [Fact]
    public async Task UpdateGuid_hands_out_a_new_guid_in_dynamic_mode()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        var old = signIn.Headers.GetValues("Guid").Single();

        using var update = await simulator.SendAsync(HttpMethod.Put, "1001/updateGuid", old);
        var answer = await Gateway.ReadAsync(update);

        Assert.Equal("0", answer.Retcode);
        var fresh = answer.Result!.Value.GetProperty("guid").GetString();
        Assert.NotEqual(old, fresh);
        Assert.Equal(fresh, SetGuid(update));
    }

    [Fact]
    public async Task Heartbeat_needs_a_signed_in_agent_and_a_guid()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var unknown = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", "whatever");
        using var signIn = await simulator.SignInAsync("1001");

        using var missing = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", null);
        using var wrong = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", "not-the-guid");

        Assert.Equal("100-006", (await Gateway.ReadAsync(unknown)).Retcode);
        Assert.Equal("000-003", (await Gateway.ReadAsync(missing)).Retcode);
        Assert.Equal("100-006", (await Gateway.ReadAsync(wrong)).Retcode);
    }

    [Fact]
    public async Task Missing_heartbeats_sign_the_agent_out_after_the_timeout()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await simulator.SignInPushAsync("1001", receiver.Url);

        simulator.Time.Advance(100 * Second);
        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid);
        simulator.Time.Advance(119 * Second);
        var stillIn = simulator.State.GetAgent("1001")!.SignedIn;
        simulator.Time.Advance(Second);

        Assert.True(stillIn);
        var agent = simulator.State.GetAgent("1001")!;
        Assert.False(agent.SignedIn);
        Assert.Equal("heartbeat-timeout", agent.SignOutReason);
        Assert.Equal(SimulatorHost.Start + (220 * Second), agent.SignedOutAt);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the ShutdownService push");
        Assert.Equal(["AgentOther_ShutdownService"], receiver.Received.Last().EventTypes);
        Assert.Contains($"\"content\":{{\"loginTime\":\"{SimulatorHost.Start.ToUnixTimeMilliseconds()}\"}}", receiver.Received.Last().Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("logout", "logout")]
    [InlineData("forcelogout", "forcelogout")]
    [InlineData("forcelogoutwithreason/7", "forcelogout:7")]
    public async Task Sign_out_pushes_ShutdownService_as_the_last_event(string route, string reason)
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await simulator.SignInPushAsync("1001", receiver.Url);

        using var response = await simulator.SendAsync(HttpMethod.Delete, $"1001/{route}", guid);
        using var again = await simulator.SendAsync(HttpMethod.Delete, $"1001/{route}", guid);

        Assert.Equal("0", (await Gateway.ReadAsync(response)).Retcode);
        Assert.Equal("100-006", (await Gateway.ReadAsync(again)).Retcode);
        Assert.Equal(reason, simulator.State.GetAgent("1001")!.SignOutReason);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the ShutdownService push");
        Assert.Equal(["AgentOther_ShutdownService"], receiver.Received.Last().EventTypes);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("256")]
    [InlineData("x")]
    public async Task Forced_logout_reason_must_be_1_to_255(string reason)
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        var guid = signIn.Headers.GetValues("Guid").Single();

        using var response = await simulator.SendAsync(HttpMethod.Delete, $"1001/forcelogoutwithreason/{reason}", guid);

        Assert.Equal("100-001", (await Gateway.ReadAsync(response)).Retcode);
        Assert.True(simulator.State.GetAgent("1001")!.SignedIn);
    }

    [Fact]
    public async Task Heartbeat_service_token_replaces_the_push_token()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await simulator.SignInPushAsync("1001", receiver.Url, "token1");
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");

        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid, ("service_token", "token2"));
        using var badToken = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid, ("service_token", "bad_token"));
        simulator.State.Enqueue("1001", [new("AgentState_Ready")]);

        Assert.Equal("0", (await Gateway.ReadAsync(heartbeat)).Retcode);
        Assert.Equal("100-001", (await Gateway.ReadAsync(badToken)).Retcode);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the second push");
        Assert.Equal("token2", receiver.Received.Last().ServiceToken);
    }

    [Fact]
    public async Task Poll_mode_agent_fetches_its_events()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var signIn = await simulator.SignInAsync("1001");
        var guid = signIn.Headers.GetValues("Guid").Single();

        using var first = await simulator.Client.SendAsync(PollRequest(guid));
        using var second = await simulator.Client.SendAsync(PollRequest(guid));

        var firstEvent = (await Gateway.ReadAsync(first)).Retcode;
        Assert.Equal("0", firstEvent);
        Assert.Contains("\"eventType\":\"AgentOther_InService\"", await first.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("\"eventType\":\"AgentState_Ready\"", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static HttpRequestMessage PollRequest(string guid)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/agentgateway/resource/agentevent/1001");
        request.Headers.Add("Guid", guid);
        return request;
    }

    private static string SetGuid(HttpResponseMessage response) =>
        response.Headers.GetValues("Set-GUID").Single()["JSESSIONID=".Length..];
}
