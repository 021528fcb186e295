using System.Net.Http.Json;
using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>POST onlineagent/{agentid}/resetskill/{autoflag}?skillid=…&amp;phonelinkage=… (docs/gateway-protocol.md §1).</summary>
public sealed class ResetSkillTests
{
    [Fact]
    public async Task Signs_the_agent_into_the_listed_skill_queues()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await SignInAsync(simulator, "1001");

        using var response = await simulator.SendAsync(HttpMethod.Post, "1001/resetskill/false?skillid=1;2;3&phonelinkage=1", guid);

        Assert.Equal("0", (await Gateway.ReadAsync(response)).Retcode);
        var agent = await simulator.Client.GetFromJsonAsync<JsonElement>("/simulator/agents/1001");
        Assert.Equal([1, 2, 3], agent.GetProperty("skills").EnumerateArray().Select(s => s.GetInt32()));
        Assert.Equal("/agentgateway/resource/onlineagent/1001/resetskill/false?skillid=1;2;3&phonelinkage=1", simulator.State.GetRequests("1001")[^1].Path);
    }

    [Fact]
    public async Task Autoflag_true_signs_into_the_configured_skill_queues()
    {
        await using var simulator = await SimulatorHost.StartAsync(new()
        {
            ["Simulator:Accounts:1001:Skills:0"] = "7",
            ["Simulator:Accounts:1001:Skills:1"] = "9",
        });
        var configured = await SignInAsync(simulator, "1001");
        var unconfigured = await SignInAsync(simulator, "1002");

        using var first = await simulator.SendAsync(HttpMethod.Post, "1001/resetskill/true?phonelinkage=0", configured);
        using var second = await simulator.SendAsync(HttpMethod.Post, "1002/resetskill/TRUE", unconfigured);

        Assert.Equal("0", (await Gateway.ReadAsync(first)).Retcode);
        Assert.Equal("0", (await Gateway.ReadAsync(second)).Retcode);
        Assert.Equal([7, 9], simulator.State.GetAgent("1001")!.Skills);
        Assert.Equal([], simulator.State.GetAgent("1002")!.Skills);
    }

    [Theory]
    [InlineData("1001/resetskill/yes?skillid=1", "000-002")]
    [InlineData("1001/resetskill/false", "000-002")]
    [InlineData("1001/resetskill/false?skillid=", "000-002")]
    [InlineData("1001/resetskill/false?skillid=1;x", "000-002")]
    [InlineData("1001/resetskill/false?skillid=0", "000-002")]
    [InlineData("1001/resetskill/true?phonelinkage=2", "000-002")]
    [InlineData("1002/resetskill/true", "100-006")]
    public async Task Refuses_bad_url_parameters_and_agents_not_signed_in(string path, string retcode)
    {
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await SignInAsync(simulator, "1001");

        using var response = await simulator.SendAsync(HttpMethod.Post, path, guid);

        Assert.Equal(retcode, (await Gateway.ReadAsync(response)).Retcode);
        Assert.Null(simulator.State.GetAgent("1001")!.Skills);
    }

    [Fact]
    public async Task Refuses_a_skill_list_over_4000_characters()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await SignInAsync(simulator, "1001");
        var list = string.Join(';', Enumerable.Range(1000, 801)); // 801 × 4 digits + 800 separators = 4004 characters

        using var response = await simulator.SendAsync(HttpMethod.Post, $"1001/resetskill/false?skillid={list}", guid);

        Assert.Equal("000-002", (await Gateway.ReadAsync(response)).Retcode);
    }

    [Fact]
    public async Task Needs_the_sessions_guid()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        await SignInAsync(simulator, "1001");

        using var missing = await simulator.SendAsync(HttpMethod.Post, "1001/resetskill/true", null);
        using var wrong = await simulator.SendAsync(HttpMethod.Post, "1001/resetskill/true", "not-the-guid");

        Assert.Equal("000-003", (await Gateway.ReadAsync(missing)).Retcode);
        Assert.Equal("100-006", (await Gateway.ReadAsync(wrong)).Retcode);
    }

    [Fact]
    public async Task A_configured_failure_answers_100_007()
    {
        await using var simulator = await SimulatorHost.StartAsync(new() { ["Simulator:Accounts:1001:ResetSkillFails"] = "true" });
        var guid = await SignInAsync(simulator, "1001");

        using var response = await simulator.SendAsync(HttpMethod.Post, "1001/resetskill/false?skillid=1", guid);

        Assert.Equal("100-007", (await Gateway.ReadAsync(response)).Retcode);
        Assert.Null(simulator.State.GetAgent("1001")!.Skills);
    }

    [Fact]
    public async Task A_new_session_starts_without_skills()
    {
        await using var simulator = await SimulatorHost.StartAsync();
        var guid = await SignInAsync(simulator, "1001");
        using var reset = await simulator.SendAsync(HttpMethod.Post, "1001/resetskill/false?skillid=5", guid);

        using var forced = await simulator.SignInAsync("1001", force: true);

        Assert.Equal("0", (await Gateway.ReadAsync(forced)).Retcode);
        Assert.Null(simulator.State.GetAgent("1001")!.Skills);
    }

    private static async Task<string> SignInAsync(SimulatorHost simulator, string agentId)
    {
        using var response = await simulator.SignInAsync(agentId);
        return response.Headers.GetValues("Guid").Single();
    }
}
