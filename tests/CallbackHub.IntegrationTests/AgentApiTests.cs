using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>The management API: sessions, sign-out, and its refusals.</summary>
public sealed class AgentApiTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
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
    public async Task Sign_out_calls_the_gateway_logout_and_refuses_the_agents_pushes_afterwards()
    {
        var token = await SignInAsync();
        var (before, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")]);

        using var response = await Hub.Api.DeleteAsync($"/api/agents/{Agent}/session");
        var (after, body) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Ready")], serviceToken: token);

        Assert.Equal(200, before);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"state\":\"signed-out\"", await response.Content.ReadAsStringAsync());
        var logout = (await Gateway.RequestsAsync(Agent)).Single(r => r!["method"]!.GetValue<string>() == "DELETE");
        Assert.EndsWith($"/onlineagent/{Agent}/logout", logout!["path"]!.GetValue<string>());
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
        Assert.Equal("signed-out", session!["state"]!.GetValue<string>());
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
    [InlineData("60000")]
    [InlineData("abc")]
    public async Task Agent_ids_outside_101_to_59999_are_rejected(string agentId)
    {
        using var response = await Hub.Api.PutAsJsonAsync($"/api/agents/{agentId}/session", new { password = "p", phoneNumber = "1" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("101 to 59999", await response.Content.ReadAsStringAsync());
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
