using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>The webhook: what is accepted, stored and published, and what is refused with nothing stored.</summary>
public sealed class PushTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private const int SignInEvents = 2; // the simulator pushes AgentOther_InService + AgentState_Ready on sign-in

    [Fact]
    public async Task Pushed_events_are_stored_in_order_and_published_with_the_right_fields()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents);

        var (status, body) = await Gateway.PushOnceAsync(Agent, [
            Event("AgentEvent_Ringing", new { caller = "5551234", called = "88001", callid = "1456403549-15" }, 1784529722590),
            Event("AgentEvent_Call_Release", "1456403549-15", 1784529722690),
            Event("AgentState_SetNotReady_Success", new { reason = "200" }),
        ]);

        Assert.Equal(200, status);
        Assert.Equal("0", body!["retcode"]!.GetValue<string>());
        var rows = await EventRows.ReadAsync(Database, Agent);
        Assert.Equal([1, 2, 3, 4, 5], rows.Select(r => r.Sequence));
        Assert.Equal(["AgentOther_InService", "AgentState_Ready", "AgentEvent_Ringing", "AgentEvent_Call_Release", "AgentState_SetNotReady_Success"],
            rows.Select(r => r.EventType));
        Assert.Equal("\"1456403549-15\"", rows[3].Content);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1784529722590), rows[2].EventGenTime);

        var messages = await consumer.WaitForAsync(5);
        Assert.Equal(rows.Select(r => r.EventId), messages.Select(m => m.Message.EventId));
        var ringing = messages[2];
        Assert.Equal(Agent, ringing.Message.AgentId);
        Assert.Equal("AgentEvent_Ringing", ringing.Message.EventType);
        Assert.Equal(3, ringing.Message.Sequence);
        Assert.Equal("1456403549-15", System.Text.Json.JsonDocument.Parse(ringing.Message.Content).RootElement.GetProperty("callid").GetString());
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1784529722590), ringing.Message.GeneratedAt);
        Assert.Equal(rows[2].ReceivedAt, ringing.Message.ReceivedAt);
        Assert.Equal("AgentEvent.AgentEvent_Ringing.1001", ringing.RoutingKey);
        Assert.Equal(ringing.Message.EventId.ToString(), ringing.MessageId);
        Assert.Equal("\"1456403549-15\"", messages[3].Message.Content);
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database), r => Assert.True(r.Published));
    }

    [Fact]
    public async Task Content_of_any_json_kind_and_unknown_event_types_are_stored_and_forwarded()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents);

        var (status, _) = await Gateway.PushOnceAsync(Agent, [
            Event("AgentMediaEvent_SomethingNew", null),
            Event("AgentChat_Unheard.Of", new { nested = new { list = new object[] { 1, "two", true } }, result = 0 }),
            Event("AgentOther_PhoneRelease", 3),
            Event("AgentEvent_Customer_Release", new object[] { "a", 1 }),
        ]);

        Assert.Equal(200, status);
        var rows = (await EventRows.ReadAsync(Database, Agent)).Skip(SignInEvents).ToList();
        Assert.Equal(["null", """{"nested": {"list": [1, "two", true]}, "result": 0}""", "3", """["a", 1]"""], rows.Select(r => r.Content));
        var messages = (await consumer.WaitForAsync(SignInEvents + 4)).Skip(SignInEvents).ToList();
        Assert.Equal(["AgentMediaEvent_SomethingNew", "AgentChat_Unheard.Of", "AgentOther_PhoneRelease", "AgentEvent_Customer_Release"],
            messages.Select(m => m.Message.EventType));
        Assert.Equal("AgentChat.AgentChat_Unheard_Of.1001", messages[1].RoutingKey);
    }

    [Fact]
    public async Task Rejects_push_with_wrong_or_missing_service_token_and_stores_nothing()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        var before = await Database.WaitForRowsAsync(SignInEvents);
        await consumer.WaitForAsync(SignInEvents);

        var (wrongStatus, wrongBody) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready")], serviceToken: "NotTheToken123");
        using var missing = await PostAsync(Body(Agent, """{"eventType":"AgentState_Ready","workNo":"1001","content":null}"""), token: null);
        // The right token, but for another agent's events.
        var otherToken = await SignInAsync(1002);
        using var foreign = await PostAsync(Body(Agent, """{"eventType":"AgentState_Ready","workNo":"1001","content":null}"""), otherToken);

        Assert.Equal(401, wrongStatus);
        Assert.Equal("100-001", wrongBody!["retcode"]!.GetValue<string>());
        Assert.Contains("service_token", wrongBody["message"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Contains("\"retcode\":\"100-001\"", await missing.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, foreign.StatusCode);
        await Task.Delay(500);
        Assert.Equal(before.Count, (await EventRows.ReadAsync(Database, Agent)).Count);
        Assert.Equal(SignInEvents, consumer.Received.Count(m => m.Message.AgentId == Agent));
    }

    // Keyed by a short name so that test names stay readable (one body is over a megabyte).
    private static readonly Dictionary<string, (string ContentType, string Body, HttpStatusCode Status, string MessagePart)> Malformed = new()
    {
        ["not JSON"] = ("application/json", "{\"workNo\":\"1001\",", HttpStatusCode.BadRequest, "not valid JSON"),
        ["wrong content type"] = ("text/plain", Body(Agent, Item), HttpStatusCode.UnsupportedMediaType, "Content-Type"),
        ["JSON array"] = ("application/json", "[]", HttpStatusCode.BadRequest, "JSON object"),
        ["no workNo"] = ("application/json", """{"eventList":[{"eventType":"AgentState_Ready","content":null}]}""", HttpStatusCode.BadRequest, "workNo is missing"),
        ["workNo out of range"] = ("application/json", Body(99, Item), HttpStatusCode.BadRequest, "101 to 999999"),
        ["no eventList"] = ("application/json", """{"workNo":"1001"}""", HttpStatusCode.BadRequest, "eventList is missing"),
        ["empty eventList"] = ("application/json", """{"workNo":"1001","eventList":[]}""", HttpStatusCode.BadRequest, "eventList is empty"),
        ["no eventType"] = ("application/json", Body(Agent, """{"workNo":"1001","content":null}"""), HttpStatusCode.BadRequest, "eventList[0].eventType"),
        ["item of another agent"] = ("application/json", Body(Agent, Item + """,{"eventType":"AgentState_Ready","workNo":"1002"}"""), HttpStatusCode.BadRequest, "eventList[1].workNo"),
        ["eventGenTime not a time"] = ("application/json", Body(Agent, """{"eventType":"AgentState_Ready","workNo":"1001","eventGenTime":"soon"}"""), HttpStatusCode.BadRequest, "eventGenTime"),
        ["body over the limit"] = ("application/json", Body(Agent, string.Join(",", Enumerable.Repeat(Item, 20_000))), HttpStatusCode.RequestEntityTooLarge, "larger than"),
    };

    public static TheoryData<string> MalformedPushes => [.. Malformed.Keys];

    private const string Item = """{"eventType":"AgentState_Ready","workNo":"1001","content":null}""";

    [Theory]
    [MemberData(nameof(MalformedPushes))]
    public async Task Rejects_malformed_push_with_a_clear_error_and_stores_nothing(string malformed)
    {
        var (contentType, body, expected, messagePart) = Malformed[malformed];
        var token = await SignInAsync();
        var before = await Database.WaitForRowsAsync(SignInEvents);

        using var response = await PostAsync(body, token, contentType);

        Assert.Equal(expected, response.StatusCode);
        var answer = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.NotEqual("0", answer.GetProperty("retcode").GetString());
        Assert.Contains(messagePart, answer.GetProperty("message").GetString());
        Assert.Equal(before.Count, (await EventRows.ReadAsync(Database)).Count);
    }

    [Fact]
    public async Task A_resent_batch_creates_no_new_rows_and_no_new_messages()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents);
        var ready = Body(Agent, """{"eventType":"AgentState_Ready","workNo":"1001","content":null}""");
        var work = Body(Agent, """{"eventType":"AgentState_Work","workNo":"1001","content":null}""");

        // The gateway did not see our first answer and re-sends the same batch, twice.
        using var first = await PostAsync(work, token);
        using var resend = await PostAsync(work, token);
        using var resendAgain = await PostAsync(work, token);
        // A batch equal to an earlier, but not the last, one is new: Ready, Work, Ready is a real sequence.
        using var readyAgain = await PostAsync(ready, token);

        Assert.All([first, resend, resendAgain, readyAgain], r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Contains("\"retcode\":\"0\"", await resend.Content.ReadAsStringAsync());
        var rows = await EventRows.ReadAsync(Database, Agent);
        Assert.Equal(["AgentOther_InService", "AgentState_Ready", "AgentState_Work", "AgentState_Ready"], rows.Select(r => r.EventType));
        var messages = await consumer.WaitForAsync(4);
        await Task.Delay(500);
        Assert.Equal(4, consumer.Received.Count);
        Assert.Equal([1L, 2, 3, 4], messages.Select(m => m.Message.Sequence));
    }

    [Fact]
    public async Task Gateway_retries_of_a_refused_push_are_stored_once_accepted()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents);

        await Gateway.EnqueueAsync(Agent, [Event("AgentState_Work"), Event("AgentState_Ready")]);

        var rows = await Database.WaitForRowsAsync(SignInEvents + 2, Agent);
        Assert.Equal(["AgentState_Work", "AgentState_Ready"], rows.Skip(SignInEvents).Select(r => r.EventType));
    }

    private Task<HttpResponseMessage> PostAsync(string body, string? token, string contentType = "application/json")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/callbacks/agent-events")
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType + "; charset=UTF-8");
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("service_token", token);
        }

        return Hub.Callbacks.SendAsync(request);
    }

    private static string Body(int agentId, string items) => $$"""{"workNo":"{{agentId}}","eventList":[{{items}}]}""";

    [Fact]
    public async Task Sign_in_gives_the_gateway_a_callBackUri_and_a_strong_token_and_keeps_no_clear_token()
    {
        using var response = await Hub.SignInAsync(Agent, new { password = "secret", phoneNumber = "88001", status = 3, autoAnswer = false });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = await response.Content.ReadAsStringAsync();
        var signIn = (await Gateway.RequestsAsync(Agent)).Single(r => r!["method"]!.GetValue<string>() == "PUT");
        var sent = System.Text.Json.JsonDocument.Parse(signIn!["body"]!.GetValue<string>()).RootElement;
        Assert.Equal(Hub.CallbackUri.AbsoluteUri, sent.GetProperty("callBackUri").GetString());
        var token = sent.GetProperty("serviceToken").GetString()!;
        Assert.Matches("^[A-Za-z0-9]{32,50}$", token);
        Assert.Equal("secret", sent.GetProperty("password").GetString());
        Assert.Equal("88001", sent.GetProperty("phonenum").GetString());
        Assert.Equal(3, sent.GetProperty("status").GetInt32());
        Assert.False(sent.GetProperty("autoanswer").GetBoolean());
        Assert.Contains("\"state\":\"active\"", answer);
        Assert.DoesNotContain(token, answer);

        // Neither the token nor the password is anywhere in the database.
        var dump = await EventRows.ScalarAsync<string>(Database, "SELECT string_agg(s::text, '|') FROM agent_sessions s");
        Assert.DoesNotContain(token, dump);
        Assert.DoesNotContain("secret", dump);
        var storedHash = await EventRows.ScalarAsync<byte[]>(Database, "SELECT token_hash FROM agent_sessions WHERE agent_id = 1001");
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(token)), storedHash);
    }
}
