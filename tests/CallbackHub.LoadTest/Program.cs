using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.GatewaySimulator;
using CallbackHub.LoadTest;
using CallbackHub.LoadTest.Sessions;
using Npgsql;

// Drives N signed-in agents against CallbackHub (separate processes) and prints one table; see README.md.
// --mode sessions measures keeping N agents signed in instead (Sessions/SessionsRun.cs).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var options = LoadOptions.Parse(args);
var runId = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
if (options.Mode == LoadMode.Sessions)
{
    await SessionsRun.RunAsync(options, runId);
    return;
}

var loadBefore = Machine.LoadAverage();
Console.Error.WriteLine($"[{runId}] load average {loadBefore}");

await SessionsRun.ResetDatabaseAsync(options.Postgres);
double? publishCeiling = null, commitCeiling = null;
if (options.Baselines)
{
    Console.Error.WriteLine($"Baseline: confirmed publishes, {options.Concurrency} in flight, {options.BaselineDuration.TotalSeconds} s…");
    publishCeiling = await Baselines.PublishCeilingAsync(options.RabbitMq, options.Concurrency, options.BaselineDuration);
    Console.Error.WriteLine($"Baseline: single-row commits, {options.Concurrency} connections, {options.BaselineDuration.TotalSeconds} s…");
    commitCeiling = await Baselines.CommitCeilingAsync(options.Postgres, options.Concurrency, options.BaselineDuration);
}

var simulatorUri = new Uri($"http://127.0.0.1:{HubProcess.FreePort()}");
await using var simulatorApp = SimulatorApp.Build([], builder =>
{
    builder.WebHost.UseUrls(simulatorUri.ToString());
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
});
await simulatorApp.StartAsync();
using var simulator = new HttpClient { BaseAddress = simulatorUri, Timeout = TimeSpan.FromSeconds(30) };

var hubs = new List<HubProcess>();
var logDirectory = Path.Combine(Path.GetTempPath(), $"callbackhub-loadtest-{runId}");
Directory.CreateDirectory(logDirectory);
try
{
    for (var i = 0; i < options.Instances; i++)
    {
        // One after the other: the first applies the migrations.
        hubs.Add(await HubProcess.StartAsync(options, i, simulatorUri, Path.Combine(logDirectory, $"callbackhub-{i}.log")));
    }

    var clients = hubs.Select(h => new HttpClient(new SocketsHttpHandler { UseCookies = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        BaseAddress = h.BaseUri,
        Timeout = TimeSpan.FromSeconds(15),
    }).ToList();
    var agents = Enumerable.Range(options.FirstAgentId, options.Agents).Select(id => new AgentLedger(id)).ToList();
    var counters = new RunCounters();
    var pusher = new Pusher(options, agents, clients, simulator, counters);

    Console.Error.WriteLine($"Signing in {agents.Count} agents through CallbackHub…");
    await SignInAsync(agents, clients, simulator, pusher);
    await ReadBaseSequencesAsync(options.Postgres, agents);

    var byId = agents.ToDictionary(a => a.AgentId);
    await using var consumer = await Consumer.StartAsync(options.RabbitMq, $"loadtest-{runId}", byId, counters);
    var sampler = new Sampler(hubs);
    Console.Error.WriteLine($"Pushing for {options.Duration.TotalSeconds} s ({options.WarmUp.TotalSeconds} s warm-up), rate {(options.Rate > 0 ? options.Rate + " events/s" : "max (closed loop)")}…");
    var pushing = pusher.RunAsync();
    var window = await sampler.RunAsync(options, options.Postgres, pushing);
    await pushing;

    Console.Error.WriteLine("Draining: waiting until every accepted event reached the consumer (≤ 60 s)…");
    var drainStart = Stopwatch.GetTimestamp();
    while (Stopwatch.GetElapsedTime(drainStart) < TimeSpan.FromSeconds(60) && agents.Any(a => { lock (a) { return a.Sent.Any(e => e.Acked && e.Received == 0); } }))
    {
        await Task.Delay(500);
    }

    var drainSeconds = Stopwatch.GetElapsedTime(drainStart).TotalSeconds;
    var backlogAfterDrain = await Sampler.BacklogAsync(options.Postgres);
    await Task.Delay(1000); // late redeliveries would show as duplicates
    var loadAfter = Machine.LoadAverage();
    Report.Print(options, runId, pusher, agents, counters, window, publishCeiling, commitCeiling, backlogAfterDrain, drainSeconds, loadBefore, loadAfter, hubs);
    Console.Error.WriteLine($"CallbackHub logs: {logDirectory}");
}
finally
{
    foreach (var hub in hubs)
    {
        await hub.DisposeAsync();
    }

    await simulatorApp.StopAsync();
}

static async Task SignInAsync(List<AgentLedger> agents, List<HttpClient> hubs, HttpClient simulator, Pusher pusher)
{
    await Parallel.ForEachAsync(agents, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (agent, ct) =>
    {
        var hub = hubs[agents.IndexOf(agent) % hubs.Count];
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/agents/{agent.AgentId}/session")
        {
            Content = JsonContent.Create(new { password = "loadtest", phoneNumber = $"7{agent.AgentId}" }),
        };
        request.Headers.Add("X-Api-Key", HubProcess.ApiKey);
        using var response = await hub.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Sign-in of agent {agent.AgentId} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        }

        // Wait until the gateway delivered the sign-in events, so that the agent's base sequence is final.
        for (var attempt = 0; ; attempt++)
        {
            var view = (await simulator.GetFromJsonAsync<JsonObject>($"/simulator/agents/{agent.AgentId}", ct))!;
            var (queued, pushed, acked) = ((int)view["queued"]!, (long)view["pushed"]!, (long)view["acknowledged"]!);
            if (queued == 0 && pushed > 0 && acked == pushed)
            {
                break;
            }

            if (attempt > 200)
            {
                throw new TimeoutException($"The sign-in events of agent {agent.AgentId} were not acknowledged.");
            }

            await Task.Delay(100, ct);
        }

        await pusher.RefreshTokenAsync(agent);
    });
}

static async Task ReadBaseSequencesAsync(string connectionString, List<AgentLedger> agents)
{
    await using var connection = new NpgsqlConnection(connectionString);
    await connection.OpenAsync();
    await using var command = new NpgsqlCommand("SELECT agent_id, last_sequence FROM agent_streams", connection);
    await using var reader = await command.ExecuteReaderAsync();
    var byId = agents.ToDictionary(a => a.AgentId);
    while (await reader.ReadAsync())
    {
        if (byId.TryGetValue(reader.GetInt32(0), out var agent))
        {
            agent.BaseSequence = reader.GetInt64(1);
        }
    }
}
