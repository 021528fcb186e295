using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Tests;

public sealed class SignInTests
{
    [Fact]
    public async Task Signs_in_and_answers_guid_headers_and_result()
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var response = await simulator.SignInAsync("1001");
        var answer = await Gateway.ReadAsync(response);

        Assert.Equal("0", answer.Retcode);
        Assert.Equal("success", answer.Message);
        var guid = response.Headers.GetValues("Guid").Single();
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.AgentGateway0$", guid);
        Assert.Equal($"JSESSIONID={guid}", response.Headers.GetValues("Set-GUID").Single());
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith($"JSESSIONID={guid}", StringComparison.Ordinal));
        var result = answer.Result!.Value;
        Assert.Equal("1001", result.GetProperty("workno").GetString());
        Assert.Equal("TTF", result.GetProperty("mediatype").GetString());
        Assert.Equal(SimulatorHost.Start.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture), result.GetProperty("loginTime").GetString());
        Assert.Equal("AgentGateway0", result.GetProperty("serverName").GetString());
        Assert.Equal(JsonValueKind.Number, result.GetProperty("vdnid").ValueKind);
        Assert.Equal("false", result.GetProperty("isForceChange").GetString());
        Assert.Equal(JsonValueKind.String, result.GetProperty("timeRemaining").ValueKind);
        Assert.Equal(
            ["vdnid", "workno", "mediatype", "loginTime", "isForceChange", "serverName", "timeRemaining"],
            result.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public async Task Without_callback_and_token_the_agent_is_in_poll_mode()
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var _ = await simulator.SignInAsync("1001", new { callBackUri = "http://127.0.0.1:1/cb" });

        Assert.Equal("poll", simulator.State.GetAgent("1001")!.Mode);
    }

    public static TheoryData<string, object> InvalidBodies => new()
    {
        { "1001", new { password = new string('p', 33) } },
        { "1001", new { password = (string?)null } },
        { "1001", new { phonenum = new string('1', 25) } },
        { "1001", new { agenttype = 5 } },
        { "1001", new { status = 6 } },
        { "1001", new { ip = "10.0.0.256" } },
        { "1001", new { ip = "::1" } },
        { "1001", new { vcPhoneNumber = new string('1', 25) } },
        { "1001", new { serviceToken = "has-dash", callBackUri = "http://127.0.0.1/cb" } },
        { "1001", new { serviceToken = new string('a', 51), callBackUri = "http://127.0.0.1/cb" } },
        { "1001", new { serviceToken = "abc", callBackUri = "http://127.0.0.1/" + new string('a', 200) } },
        { "1001", new { serviceToken = "abc", callBackUri = "not a uri" } },
        { "1001", new { serviceworkid = new string('w', 31) } },
        { "100", new { } },
        { "1000000", new { } },
        { "01001", new { } },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Rejects_invalid_fields_with_100_001(string agentId, object fields)
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var response = await simulator.SignInAsync(agentId, fields);
        var answer = await Gateway.ReadAsync(response);

        Assert.Equal("100-001", answer.Retcode);
        Assert.Null(simulator.State.GetAgent(agentId));
    }

    [Theory]
    [InlineData("101")]
    [InlineData("60000")]
    [InlineData("999999")]
    public async Task Accepts_agent_ids_from_101_to_999999(string agentId)
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var response = await simulator.SignInAsync(agentId);

        Assert.Equal("0", (await Gateway.ReadAsync(response)).Retcode);
        Assert.True(simulator.State.GetAgent(agentId)!.SignedIn);
    }

    [Fact]
    public async Task Accepts_an_empty_password_as_in_huaweis_example()
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var response = await simulator.SignInAsync("1001", new { password = "" });

        Assert.Equal("0", (await Gateway.ReadAsync(response)).Retcode);
    }

    [Fact]
    public async Task Rejects_a_body_that_is_not_json()
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var content = new StringContent("password=x");
        using var response = await simulator.Client.PutAsync("/agentgateway/resource/onlineagent/1001", content);

        Assert.Equal("100-001", (await Gateway.ReadAsync(response)).Retcode);
    }

    [Fact]
    public async Task Second_sign_in_answers_100_002_and_forcelogin_replaces_the_session()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        var oldGuid = await simulator.SignInPushAsync("1001", receiver.Url);

        using var again = await simulator.SignInAsync("1001");
        using var forced = await simulator.SignInAsync("1001", new { callBackUri = receiver.Url, serviceToken = "token2" }, force: true);

        Assert.Equal("100-002", (await Gateway.ReadAsync(again)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(forced)).Retcode);
        var newGuid = forced.Headers.GetValues("Guid").Single();
        Assert.NotEqual(oldGuid, newGuid);
        using var staleHeartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", oldGuid);
        Assert.Equal("100-006", (await Gateway.ReadAsync(staleHeartbeat)).Retcode);

        // The replaced session ends with its own ShutdownService, in order, before the new session's events.
        await Eventually.HoldsAsync(() => receiver.Received.Count == 3, "three pushes");
        var pushes = receiver.Received.ToArray();
        Assert.Equal(["AgentOther_ShutdownService"], pushes[1].EventTypes);
        Assert.Equal((oldGuid, "token1"), (pushes[1].Guid, pushes[1].ServiceToken));
        Assert.Equal((newGuid, "token2"), (pushes[2].Guid, pushes[2].ServiceToken));
    }

    [Fact]
    public async Task Applies_configured_accounts()
    {
        await using var simulator = await SimulatorHost.StartAsync(new()
        {
            ["Simulator:Accounts:1001:Password"] = "right",
            ["Simulator:Accounts:1002:Locked"] = "true",
            ["Simulator:Accounts:1003:ForceLoginAllowed"] = "false",
        });

        using var wrong = await simulator.SignInAsync("1001", new { password = "wrong" });
        using var right = await simulator.SignInAsync("1001", new { password = "right" });
        using var locked = await simulator.SignInAsync("1002");
        using var first = await simulator.SignInAsync("1003");
        using var forced = await simulator.SignInAsync("1003", force: true);
        using var anyPassword = await simulator.SignInAsync("1004", new { password = "whatever" });

        Assert.Equal("100-004", (await Gateway.ReadAsync(wrong)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(right)).Retcode);
        Assert.Equal("110-016", (await Gateway.ReadAsync(locked)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(first)).Retcode);
        Assert.Equal("100-015", (await Gateway.ReadAsync(forced)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(anyPassword)).Retcode);
    }

    [Fact]
    public async Task Sign_in_during_a_pending_sign_out_answers_100_021()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:SignOutDuration"] = "00:00:05" });
        using var signIn = await simulator.SignInAsync("1001");
        var guid = signIn.Headers.GetValues("Guid").Single();
        using var logout = await simulator.SendAsync(HttpMethod.Delete, "1001/logout", guid);

        using var tooEarly = await simulator.SignInAsync("1001");
        simulator.Time.Advance(TimeSpan.FromSeconds(5));
        using var later = await simulator.SignInAsync("1001");

        Assert.Equal("100-021", (await Gateway.ReadAsync(tooEarly)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(later)).Retcode);
    }

    [Theory]
    [InlineData(4, new[] { "AgentOther_InService", "AgentState_Ready" })]
    [InlineData(3, new[] { "AgentOther_InService", "AgentState_Ready", "AgentState_SetNotReady_Success" })]
    [InlineData(5, new[] { "AgentOther_InService", "AgentState_Ready", "AgentState_Work" })]
    public async Task Pushes_sign_in_events_for_the_requested_status(int status, string[] expected)
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();

        await simulator.SignInPushAsync("1001", receiver.Url, fields: new { status });

        await Eventually.HoldsAsync(() => !receiver.Received.IsEmpty, "the sign-in push");
        Assert.Equal(expected, receiver.Received.Single().EventTypes);
    }

    [Fact]
    public async Task Pushes_linkage_capability_when_phone_linkage_is_on()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();

        await simulator.SignInPushAsync("1001", receiver.Url, fields: new { phonelinkage = true });

        await Eventually.HoldsAsync(() => !receiver.Received.IsEmpty, "the sign-in push");
        Assert.Equal(["AgentOther_InService", "AgentEvent_linkageCapability", "AgentState_Ready"], receiver.Received.Single().EventTypes);
    }

    [Theory]
    [InlineData("""{"password":"","phonenum":"40038","status":"3","releasephone":"false","agenttype":"4","phonelinkage":"true","autoanswer":"TRUE"}""")]
    [InlineData("""{"password":"","phonenum":40038,"status":3,"releasephone":false,"agenttype":4,"phonelinkage":true,"autoanswer":1}""")]
    public async Task Accepts_numbers_and_booleans_as_strings_or_as_json_values(string body)
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        var withCallback = body[..^1] + $$""","callBackUri":"{{receiver.Url}}","serviceToken":"token1"}""";

        using var content = new StringContent(withCallback, System.Text.Encoding.UTF8, "application/json");
        using var response = await simulator.Client.PutAsync("/agentgateway/resource/onlineagent/1001", content);

        Assert.Equal("0", (await Gateway.ReadAsync(response)).Retcode);
        var agent = simulator.State.GetAgent("1001")!;
        Assert.Equal((3, "40038"), (agent.Status, agent.PhoneNumber));
        await Eventually.HoldsAsync(() => !receiver.Received.IsEmpty, "the sign-in push");
        Assert.Equal(
            ["AgentOther_InService", "AgentEvent_linkageCapability", "AgentState_Ready", "AgentState_SetNotReady_Success"],
            receiver.Received.Single().EventTypes);
    }

    [Theory]
    [InlineData("""{"password":"","phonenum":"40038","releasephone":"no"}""")]
    [InlineData("""{"password":"","phonenum":"40038","status":"four"}""")]
    [InlineData("""{"password":"","phonenum":{"number":"40038"}}""")]
    public async Task Rejects_scalars_that_are_neither_form(string body)
    {
        await using var simulator = await SimulatorHost.StartAsync();

        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await simulator.Client.PutAsync("/agentgateway/resource/onlineagent/1001", content);

        Assert.Equal("100-001", (await Gateway.ReadAsync(response)).Retcode);
        Assert.Null(simulator.State.GetAgent("1001"));
    }
}
