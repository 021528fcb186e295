using System.Text.Json;
using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Tests;

public sealed class PushDeliveryTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);
    private static readonly long StartMs = SimulatorHost.Start.ToUnixTimeMilliseconds();

    [Fact]
    public async Task Push_has_the_gateway_shape_headers_and_content_type()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();

        var guid = await simulator.SignInPushAsync("1001", receiver.Url, "token1");

        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");
        var push = receiver.Received.Single();
        Assert.Equal(guid, push.Guid);
        Assert.Equal("token1", push.ServiceToken);
        Assert.Equal("application/json; charset=UTF-8", push.ContentType);
        Assert.Equal(
            $$"""{"workNo":"1001","eventList":[{"eventType":"AgentOther_InService","workNo":"1001","eventGenTime":{{StartMs}},"content":null},{"eventType":"AgentState_Ready","workNo":"1001","eventGenTime":{{StartMs}},"content":null}]}""",
            push.Body);
    }

    [Fact]
    public async Task Content_may_be_an_object_or_a_bare_string_and_eventGenTime_can_be_left_out()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:IncludeEventGenTime"] = "false" });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");

        simulator.State.Enqueue("1001",
        [
            SimulatedEvent.Of("AgentEvent_Call_Release", "1456403549-15"),
            SimulatedEvent.Of("AgentEvent_Customer_Release", new { callid = "1456403549-15", number = "+4930123" }),
            new SimulatedEvent("Vendor_Unknown", EventGenTime: 42),
        ]);

        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the second push");
        Assert.DoesNotContain("eventGenTime", receiver.Received.First().Body, StringComparison.Ordinal);
        Assert.Equal(
            """{"workNo":"1001","eventList":[{"eventType":"AgentEvent_Call_Release","workNo":"1001","content":"1456403549-15"},{"eventType":"AgentEvent_Customer_Release","workNo":"1001","content":{"callid":"1456403549-15","number":"+4930123"}},{"eventType":"Vendor_Unknown","workNo":"1001","eventGenTime":42,"content":null}]}""",
            receiver.Received.Last().Body);
    }

    [Fact]
    public async Task Queued_events_go_out_in_order_in_batches_of_the_configured_size()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:MaxEventsPerPush"] = "2" });
        await simulator.SignInPushAsync("1001", receiver.Url);
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the sign-in push");

        simulator.State.Enqueue("1001", [.. Enumerable.Range(1, 5).Select(i => new SimulatedEvent($"Event{i}"))]);

        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 4, "three more pushes");
        var pushes = receiver.Received.Skip(1).Select(p => p.EventTypes).ToList();
        Assert.Equal([["Event1", "Event2"], ["Event3", "Event4"], ["Event5"]], pushes);
        var agent = simulator.State.GetAgent("1001")!;
        Assert.Equal((4, 4, 0, 0), (agent.Pushed, agent.Acknowledged, agent.Failed, agent.Queued));
    }

    [Fact]
    public async Task A_failed_batch_is_resent_unchanged_every_retry_interval_until_acknowledged()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        var answers = 0;
        receiver.Answer = _ => Interlocked.Increment(ref answers) switch
        {
            1 => (500, "oops"),
            2 => (200, """{"message":"bad token","retcode":"100-001"}"""),
            _ => (200, CallbackReceiver.Success),
        };
        await using var simulator = await SimulatorHost.StartAsync();
        await simulator.SignInPushAsync("1001", receiver.Url);

        await simulator.Time.AdvanceUntilAsync(() => simulator.State.GetPushes("1001").Any(a => a.Acknowledged), 10 * Second, "an acknowledged push");

        var attempts = simulator.State.GetPushes("1001");
        Assert.Equal([1, 2, 3], attempts.Select(a => a.Attempt));
        Assert.Single(attempts.Select(a => a.BatchId).Distinct());
        Assert.Single(attempts.Select(a => a.Body).Distinct());
        Assert.Equal([500, 200, 200], attempts.Select(a => a.HttpStatus));
        Assert.Equal([false, false, true], attempts.Select(a => a.Acknowledged));
        Assert.All(attempts.Zip(attempts.Skip(1)), pair => Assert.True(pair.Second.Time - pair.First.Time >= 10 * Second));
        var agent = simulator.State.GetAgent("1001")!;
        Assert.Equal((3, 1, 2), (agent.Pushed, agent.Acknowledged, agent.Failed));
        Assert.True(agent.SignedIn);
    }

    [Fact]
    public async Task Continuous_push_failure_forces_the_agent_out()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        receiver.Answer = _ => (503, "");
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:PushFailTotal"] = "00:00:30" });
        var guid = await simulator.SignInPushAsync("1001", receiver.Url);
        simulator.State.Enqueue("1001", [new SimulatedEvent("AgentState_Work")]);

        await simulator.Time.AdvanceUntilAsync(() => !simulator.State.GetAgent("1001")!.SignedIn, 10 * Second, "the forced sign-out");

        var agent = simulator.State.GetAgent("1001")!;
        Assert.Equal("push-failures", agent.SignOutReason);
        Assert.Equal(0, agent.Queued);
        var attempts = simulator.State.GetPushes("1001");
        Assert.Single(attempts.Select(a => a.BatchId).Distinct());
        Assert.True(agent.SignedOutAt - attempts[0].Time >= 30 * Second);
        using var heartbeat = await simulator.SendAsync(HttpMethod.Post, "1001/handshake", guid);
        Assert.Equal("100-006", (await Gateway.ReadAsync(heartbeat)).Retcode);
    }

    [Fact]
    public async Task An_unreachable_callback_counts_as_a_failure()
    {
        await using var simulator = await SimulatorHost.StartAsync();

        await simulator.SignInPushAsync("1001", "http://127.0.0.1:9/callback");

        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 1, "a failed attempt");
        var attempt = simulator.State.GetPushes("1001").Single();
        Assert.Null(attempt.HttpStatus);
        Assert.NotNull(attempt.Error);
        Assert.Equal(2, simulator.State.GetAgent("1001")!.Queued);
    }

    [Fact]
    public async Task Push_once_bypasses_the_queue_with_an_overridden_token()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        receiver.Answer = push => push.ServiceToken == "token1"
            ? (200, CallbackReceiver.Success)
            : (401, """{"message":"invalid service_token","retcode":"100-001"}""");
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await simulator.SignInPushAsync("1001", receiver.Url, "token1");
        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 1, "the sign-in push");

        var response = await simulator.State.PushOnceAsync("1001", [new SimulatedEvent("AgentState_Ready")], serviceToken: "wrong");

        Assert.NotNull(response);
        Assert.Equal(401, response.Status);
        Assert.False(response.Acknowledged);
        Assert.Contains("100-001", response.Body, StringComparison.Ordinal);
        Assert.Equal(("wrong", guid), (receiver.Received.Last().ServiceToken, receiver.Received.Last().Guid));
        var oneShot = simulator.State.GetPushes("1001")[^1];
        Assert.True(oneShot.OneShot);
        Assert.Equal((1, 0), (simulator.State.GetAgent("1001")!.Pushed, simulator.State.GetAgent("1001")!.Failed));
    }

    [Fact]
    public async Task Push_once_needs_an_agent_with_a_push_session()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        using var _ = await simulator.SignInAsync("1002");

        Assert.Null(await simulator.State.PushOnceAsync("1001", [new SimulatedEvent("AgentState_Ready")]));
        Assert.Null(await simulator.State.PushOnceAsync("1002", [new SimulatedEvent("AgentState_Ready")]));
    }

    [Fact]
    public async Task Recorded_pushes_carry_the_body_and_the_answer()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var simulator = await SimulatorHost.StartAsync();
        await simulator.SignInPushAsync("1001", receiver.Url);

        await Eventually.HoldsAsync(() => simulator.State.GetPushes("1001").Count == 1, "the sign-in push");

        var attempt = simulator.State.GetPushes("1001").Single();
        Assert.Equal(receiver.Received.Single().Body, attempt.Body);
        Assert.Equal(CallbackReceiver.Success, attempt.ResponseBody);
        Assert.Equal(["AgentOther_InService", "AgentState_Ready"], attempt.EventTypes);
        Assert.Equal(receiver.Url, attempt.Url);
        using var document = JsonDocument.Parse(attempt.Body);
        Assert.Equal("1001", document.RootElement.GetProperty("workNo").GetString());
    }
}
