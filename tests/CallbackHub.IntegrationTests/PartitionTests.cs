using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// Several instances as an operator runs them (separate processes): they share the outbox partitions, and the partitions
/// of one that is killed or frozen are published by the others within seconds, in order per agent, nothing lost.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class PartitionTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : IAsyncLifetime
{
    private const string ApiKey = "partition-test-api-key-0123456789";
    private const int Partitions = 8;
    private static readonly int[] Agents = [.. Enumerable.Range(3001, Partitions)];
    private static readonly TimeSpan TakeoverLimit = TimeSpan.FromSeconds(15);

    private string _database = "";
    private string _broker = "";
    private SimulatorInstance _gateway = null!;
    private readonly List<Instance> _instances = [];

    public async Task InitializeAsync()
    {
        _database = await postgres.CreateDatabaseAsync("partitions");
        _broker = await rabbitMq.CreateVirtualHostAsync("partitions");
        _gateway = await SimulatorInstance.StartAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var instance in _instances)
        {
            instance.Signal("CONT");
            await instance.Process.DisposeAsync();
        }

        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task A_frozen_instances_partitions_are_taken_over_within_seconds_and_its_late_progress_is_refused()
    {
        await using var consumer = await QueueProbe.StartAsync(_broker);
        var a = await StartAsync("a");
        var tokens = await SignInAsync(a);
        var b = await StartAsync("b");
        await WaitUntilAsync(async () => await HeldAsync("a") == Partitions / 2 && await HeldAsync("b") == Partitions / 2, "the partitions to be shared 4/4");

        // Each sign-in pushed AgentOther_InService and AgentState_Ready.
        var pushed = (2 * Agents.Length) + await PushRoundAsync(tokens, b, "before");
        await consumer.WaitForAsync(pushed, TimeSpan.FromSeconds(30));

        a.Signal("STOP");
        var frozenAt = Stopwatch.GetTimestamp();
        pushed += await PushRoundAsync(tokens, b, "frozen");
        var received = await consumer.WaitForAsync(pushed, TakeoverLimit + TimeSpan.FromSeconds(5));
        var takeover = Stopwatch.GetElapsedTime(frozenAt);
        Assert.True(received.Select(m => m.Message.EventId).Distinct().Count() >= pushed, $"{received.Count} of {pushed} arrived within {takeover}; b's log:\n{b.Process.Output}");
        Assert.True(takeover < TakeoverLimit, $"publishing resumed only after {takeover}");
        Assert.Equal(Partitions, await HeldAsync("b"));

        a.Signal("CONT");
        // The resumed instance finds its leases taken over (its renewal and any progress write are refused), then takes its
        // share again once b hands it back.
        await WaitUntilAsync(async () => await HeldAsync("a") == Partitions / 2, "a to hold its share again");
        Assert.Contains("taken over by another instance", a.Process.Output, StringComparison.Ordinal);
        pushed += await PushRoundAsync(tokens, a, "resumed-a");
        pushed += await PushRoundAsync(tokens, b, "resumed-b");

        var messages = await consumer.WaitForAsync(pushed, TimeSpan.FromSeconds(30));
        AssertEveryEventArrivedFirstInOrder(messages, pushed, a, b);
    }

    [Fact]
    public async Task A_killed_instances_partitions_are_taken_over_within_seconds()
    {
        await using var consumer = await QueueProbe.StartAsync(_broker);
        var a = await StartAsync("a");
        var tokens = await SignInAsync(a);
        var b = await StartAsync("b");
        await WaitUntilAsync(async () => await HeldAsync("b") == Partitions / 2, "b to take its share");
        await consumer.WaitForAsync(2 * Agents.Length);

        a.Signal("KILL");
        var killedAt = Stopwatch.GetTimestamp();
        var pushed = (2 * Agents.Length) + await PushRoundAsync(tokens, b, "killed");
        var received = await consumer.WaitForAsync(pushed, TakeoverLimit + TimeSpan.FromSeconds(5));
        Assert.True(received.Select(m => m.Message.EventId).Distinct().Count() >= pushed, $"{received.Count} of {pushed} arrived; b's log:\n{b.Process.Output}");
        Assert.True(Stopwatch.GetElapsedTime(killedAt) < TakeoverLimit, $"publishing resumed only after {Stopwatch.GetElapsedTime(killedAt)}");
        Assert.Equal(Partitions, await HeldAsync("b"));
        AssertEveryEventArrivedFirstInOrder(received, pushed, b);
    }

    /// <summary>Each agent's events, at their first arrival, are 1, 2, 3… in arrival order; none is missing.</summary>
    private static void AssertEveryEventArrivedFirstInOrder(IReadOnlyList<ReceivedEvent> messages, int pushed, params Instance[] instances)
    {
        var distinct = messages.Select(m => m.Message.EventId).Distinct().Count();
        Assert.True(distinct == pushed, $"{distinct} distinct events of {pushed} arrived. "
            + string.Join("\n", instances.Select(i => $"Instance {i.Id}'s log:\n{i.Process.Output}")));
        foreach (var agent in Agents)
        {
            var first = PublishingTests.FirstArrivals(messages.Where(m => m.Message.AgentId == agent).Select(m => m.Message.Sequence));
            Assert.Equal(Enumerable.Range(1, first.Count).Select(i => (long)i), first);
        }
    }

    private async Task<Instance> StartAsync(string id)
    {
        var port = ContainerSupport.FreeTcpPort();
        var baseUri = new Uri($"http://127.0.0.1:{port}");
        var process = ServiceProcess.Start(new Dictionary<string, string>
        {
            ["ConnectionStrings__Postgres"] = _database,
            ["ConnectionStrings__RabbitMq"] = _broker,
            ["Gateway__BaseUrl"] = _gateway.BaseUri.ToString(),
            ["Gateway__CallbackBaseUrl"] = baseUri.ToString(),
            ["Management__ApiKey"] = ApiKey,
            ["ASPNETCORE_URLS"] = baseUri.ToString(),
            ["Sessions__InstanceId"] = id,
            // The tokens stay what the test read; sessions are not what is tested here.
            ["Sessions__TokenRotationInterval"] = "00:00:00",
            ["Sessions__SignOutOnShutdown"] = "false",
            ["Outbox__Partitions"] = $"{Partitions}",
            ["Outbox__LeaseDuration"] = "00:00:03",
            ["Outbox__LeaseRenewInterval"] = "00:00:01",
            ["Outbox__PublishTimeout"] = "00:00:03",
        });
        var instance = new Instance(id, baseUri, process);
        _instances.Add(instance);
        using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(5) };
        await WaitUntilAsync(async () =>
        {
            try
            {
                using var ready = await http.GetAsync(new Uri("/health/ready", UriKind.Relative));
                return ready.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, $"instance {id} to be ready", process);
        return instance;
    }

    private async Task<Dictionary<int, string>> SignInAsync(Instance instance)
    {
        using var api = new HttpClient { BaseAddress = instance.BaseUri };
        api.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        var tokens = new Dictionary<int, string>();
        foreach (var agent in Agents)
        {
            using var response = await api.PutAsJsonAsync($"/api/agents/{agent}/session", new { password = "secret", phoneNumber = $"8{agent}" });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            tokens[agent] = await _gateway.ServiceTokenAsync(agent);
        }

        return tokens;
    }

    /// <summary>One push of one event per agent to <paramref name="instance"/>'s webhook, as the gateway sends it; returns how many events.</summary>
    private static async Task<int> PushRoundAsync(Dictionary<int, string> tokens, Instance instance, string label)
    {
        using var http = new HttpClient { BaseAddress = instance.BaseUri, Timeout = TimeSpan.FromSeconds(10) };
        foreach (var (agent, token) in tokens)
        {
            var workNo = agent.ToString(CultureInfo.InvariantCulture);
            var body = $$$"""{"workNo":"{{{workNo}}}","eventList":[{"eventType":"AgentState_Work","workNo":"{{{workNo}}}","content":{"round":"{{{label}}}"}}]}""";
            using var request = new HttpRequestMessage(HttpMethod.Post, "/callbacks/agent-events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add("service_token", token);
            using var response = await http.SendAsync(request);
            var answer = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode && answer.Contains("\"retcode\":\"0\"", StringComparison.Ordinal), $"push to {instance.Id}: {(int)response.StatusCode} {answer}");
        }

        return tokens.Count;
    }

    private Task<long> HeldAsync(string instance) =>
        EventRows.ScalarAsync<long>(_database, $"SELECT count(*) FROM outbox_partitions WHERE owner_instance = '{instance}' AND lease_expires_at > now()");

    private static async Task WaitUntilAsync(Func<Task<bool>> done, string what, ServiceProcess? process = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await done())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Waited 60 s for {what}.{(process is null ? "" : $" Its output:\n{process.Output}")}");
            }

            await Task.Delay(200);
        }
    }

    private sealed record Instance(string Id, Uri BaseUri, ServiceProcess Process)
    {
        public void Signal(string signal)
        {
            using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", Process.Id.ToString(CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }
    }
}
