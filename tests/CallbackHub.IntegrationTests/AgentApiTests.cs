using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>The management API: sessions, sign-out, and its refusals.</summary>
public sealed class AgentApiTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private static readonly TimeSpan SignOutGrace = TimeSpan.FromSeconds(2);

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Sessions:SignOutGrace"] = SignOutGrace.ToString(),
    };

    protected override IReadOnlyDictionary<string, string?> GatewaySettings => new Dictionary<string, string?>
    {
        ["Simulator:Accounts:1009:Password"] = "right-password",
    };

    [Fact]
    public async Task Lists_and_shows_sessions_without_any_secret()
    {
        var token = await SignInAsync();

        var list = await Hub.Api.GetFromJsonAsync<JsonArray>("/api/agents");
        var one = await Hub.Api.GetStringAsync($"/api/agents/{Agent}/session");

        var session = Assert.Single(list!)!.AsObject();
        Assert.Equal(Agent, session["agentId"]!.GetValue<int>());
        Assert.Equal("active", session["state"]!.GetValue<string>());
        Assert.NotNull(session["signedInAt"]);
        Assert.NotNull(session["gateway"]);
        Assert.DoesNotContain(token, one);
        Assert.DoesNotContain(token, list!.ToJsonString());
    }

    [Fact]
    public async Task Sign_out_calls_the_gateway_logout_takes_the_sessions_last_event_and_refuses_the_token_after_the_grace()
    {
        var token = await SignInAsync();
        var (before, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")]);

        using var response = await Hub.Api.DeleteAsync($"/api/agents/{Agent}/session");
        var signedOutAt = DateTime.UtcNow;
        // The gateway's last event comes after its logout answer, with the ended session's token.
        var (last, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentOther_ShutdownService", new { loginTime = "1471585949806" })], serviceToken: token);
        await Task.Delay(SignOutGrace - (DateTime.UtcNow - signedOutAt) + TimeSpan.FromMilliseconds(300));
        var (after, body) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready")], serviceToken: token);

        Assert.Equal(200, before);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"state\":\"signed-out\"", await response.Content.ReadAsStringAsync());
        var logout = (await Gateway.RequestsAsync(Agent)).Single(r => r!["method"]!.GetValue<string>() == "DELETE");
        Assert.EndsWith($"/onlineagent/{Agent}/logout", logout!["path"]!.GetValue<string>());
        Assert.Equal(200, last);
        Assert.Equal("AgentOther_ShutdownService", (await EventRows.ReadAsync(Database, Agent))[^1].EventType);
        Assert.Equal("signed-out", (await Hub.Api.GetFromJsonAsync<JsonObject>($"/api/agents/{Agent}/session"))!["state"]!.GetValue<string>());
        Assert.Equal(401, after);
        Assert.Equal("100-001", body!["retcode"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_graceful_shutdown_signs_the_instances_agents_out()
    {
        await SignInAsync();

        await Hub.DisposeAsync(); // what SIGTERM does

        var logout = Assert.Single(await Gateway.RequestsAsync(Agent), r => r!["method"]!.GetValue<string>() == "DELETE");
        Assert.EndsWith("/logout", logout!["path"]!.GetValue<string>());
        Assert.False((await Gateway.GetAgentAsync(Agent))["signedIn"]!.GetValue<bool>());
        Assert.Equal("signed-out", await EventRows.ScalarAsync<string>(Database, $"SELECT state FROM agent_sessions WHERE agent_id = {Agent}"));
    }

    [Fact]
    public async Task Without_sign_out_on_shutdown_the_agent_stays_in_and_its_lease_is_handed_back()
    {
        await using var keeping = await StartHubAsync(new Dictionary<string, string?> { ["Sessions:SignOutOnShutdown"] = "false" });
        using (var signIn = await keeping.SignInAsync(1003))
        {
            signIn.EnsureSuccessStatusCode();
        }

        Assert.NotNull(await EventRows.ScalarAsync<string>(Database, "SELECT owner_instance FROM agent_sessions WHERE agent_id = 1003"));
        await keeping.DisposeAsync();

        Assert.DoesNotContain(await Gateway.RequestsAsync(1003), r => r!["method"]!.GetValue<string>() == "DELETE");
        Assert.True((await Gateway.GetAgentAsync(1003))["signedIn"]!.GetValue<bool>());
        Assert.Null(await EventRows.ScalarAsync<string>(Database, "SELECT owner_instance FROM agent_sessions WHERE agent_id = 1003"));
    }

    [Fact]
    public async Task Gateway_refusals_come_back_as_problem_details_with_the_gateways_retcode()
    {
        using var response = await Hub.SignInAsync(1009, new { password = "wrong-password", phoneNumber = "88009" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("100-004", problem["retcode"]!.GetValue<string>());
        Assert.Contains("wrong account or password", problem["detail"]!.GetValue<string>());
        var session = await Hub.Api.GetFromJsonAsync<JsonObject>("/api/agents/1009/session");
        Assert.Equal("failed", session!["state"]!.GetValue<string>());
        Assert.Contains("100-004", session["lastError"]!.GetValue<string>());
        Assert.Null(session["signedOutAt"]);
    }

    [Fact]
    public async Task A_sign_in_the_gateway_never_answered_shows_as_failed_not_lost()
    {
        await using var unreachable = await StartHubAsync(new Dictionary<string, string?> { ["Gateway:BaseUrl"] = $"http://127.0.0.1:{ContainerSupport.FreeTcpPort()}" });

        using var response = await unreachable.SignInAsync(1002);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var session = (await unreachable.Api.GetFromJsonAsync<JsonObject>("/api/agents/1002/session"))!;
        Assert.Equal("failed", session["state"]!.GetValue<string>());
        Assert.Contains("could not be reached", session["lastError"]!.GetValue<string>());
        Assert.Null(session["signedInAt"]);
    }

    [Theory]
    [InlineData("{\"password\": \"p\", ", "The body is not valid JSON")]
    [InlineData("{\"password\": 1234, \"phoneNumber\": \"1\"}", "password must be a string.")]
    [InlineData("{\"password\": \"p\", \"phoneNumber\": \"1\", \"status\": \"busy\"}", "status must be a whole number.")]
    [InlineData("", "The body is not valid JSON")]
    public async Task A_body_that_cannot_be_read_is_answered_with_a_sentence_and_nothing_is_called(string body, string sentence)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");

        using var response = await Hub.Api.PutAsync(new Uri($"/api/agents/{Agent}/session", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith(sentence, (await response.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(await Gateway.RequestsAsync(Agent));
    }

    [Fact]
    public async Task Unknown_routes_and_wrong_methods_are_answered_with_a_sentence()
    {
        using var unknown = await Hub.Api.GetAsync(new Uri("/api/agent", UriKind.Relative));
        using var wrongMethod = await Hub.Api.PatchAsync(new Uri($"/api/agents/{Agent}/session", UriKind.Relative), null);

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("Nothing is served at /api/agent.", (await unknown.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Equal(
            $"PATCH is not allowed on /api/agents/{Agent}/session; it takes DELETE, GET, PUT.",
            (await wrongMethod.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Signing_in_twice_is_a_conflict()
    {
        await SignInAsync();

        using var again = await Hub.SignInAsync(Agent);

        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Theory]
    [InlineData("100")]
    [InlineData("1000000")]
    [InlineData("abc")]
    public async Task Agent_ids_outside_101_to_999999_are_rejected(string agentId)
    {
        using var response = await Hub.Api.PutAsJsonAsync($"/api/agents/{agentId}/session", new { password = "p", phoneNumber = "1" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("101 to 999999", await response.Content.ReadAsStringAsync());
        Assert.Empty(await Gateway.RequestsAsync(100));
    }

    [Fact]
    public async Task Invalid_sign_in_fields_are_rejected_before_calling_the_gateway()
    {
        using var response = await Hub.Api.PutAsJsonAsync($"/api/agents/{Agent}/session", new { password = new string('x', 33), phoneNumber = "1", status = 9, ip = "::1" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.Equal(["password", "status", "ip"], problem.Select(p => p.Key));
        Assert.Empty(await Gateway.RequestsAsync(Agent));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-key-wrong-key-wrong-key")]
    public async Task Management_api_requires_the_api_key(string? key)
    {
        using var client = new HttpClient { BaseAddress = Hub.BaseUri };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", key);
        }

        using var list = await client.GetAsync("/api/agents");
        using var signIn = await client.PutAsJsonAsync($"/api/agents/{Agent}/session", new { password = "p", phoneNumber = "1" });

        Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, signIn.StatusCode);
        Assert.Empty(await Gateway.RequestsAsync(Agent));
    }
}
