using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CallbackHub.GatewaySimulator;
using CallbackHub.LoadTest.Sessions;
using Npgsql;

namespace CallbackHub.LoadTest;

/// <summary>What a push-mode run shares between its legs: the options, the run id, the log directory.</summary>
internal sealed class Lab
{
    public Lab(LoadOptions options, string runId)
    {
        Options = options;
        RunId = runId;
        LogDirectory = Path.Combine(Path.GetTempPath(), $"callbackhub-loadtest-{runId}");
        Directory.CreateDirectory(LogDirectory);
    }

    public LoadOptions Options { get; }
    public string RunId { get; }
    public string LogDirectory { get; }
}

/// <summary>
/// The gateway simulator, in-process. Each leg gets its own: the simulator keeps per-agent push counters and queues, and
/// the sign-in wait (every push of the agent acknowledged) must only see this leg's.
/// </summary>
internal sealed class Gateway : IAsyncDisposable
{
    private readonly WebApplication _app;

    private Gateway(WebApplication app, Uri uri)
    {
        _app = app;
        Uri = uri;
        Client = new HttpClient { BaseAddress = uri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri Uri { get; }
    public HttpClient Client { get; }

    public static async Task<Gateway> StartAsync()
    {
        var uri = new Uri($"http://127.0.0.1:{HubProcess.FreePort()}");
        var app = SimulatorApp.Build([], builder =>
        {
            builder.WebHost.UseUrls(uri.ToString());
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        });
        await app.StartAsync();
        return new Gateway(app, uri);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One measured run against one target: closed loop (<paramref name="Rate"/> 0) or open loop at <paramref name="Rate"/> events/s.</summary>
internal sealed record LegSpec(string Name, Target Target, double Rate)
{
    public string Describe() => (Target == Target.Plain ? "plain receiver" : "CallbackHub") + ", "
        + (Rate > 0 ? $"open loop {Rate:F0} events/s" : "closed loop (max)");
}

/// <summary>The freeze of one instance (<c>--fault freeze</c>) and what the consumer saw of the others meanwhile.</summary>
internal sealed record FreezeResult(
    int Instance, IReadOnlyList<double?> PublishedBefore, long FrozenAt, long ContinuedAt, double? ResumeSeconds, double LongestGapSeconds,
    long LiveEventsPushedDuringFreeze);

internal sealed record LegResult(
    LegSpec Spec, LegStats Stats, Window Window, string BacklogSource, long? BacklogAfterDrain, double DrainSeconds, IReadOnlyList<int> Pids,
    IReadOnlyList<double?> PublishedPerInstance, FreezeResult? Freeze, IReadOnlyList<string> OutboxPaths);

/// <summary>Runs one leg: empties the database, starts the target's processes, pushes, drains, measures, stops them.</summary>
internal static class PushLeg
{
    public static async Task<LegResult> RunAsync(Lab lab, LegSpec spec)
    {
        var options = lab.Options;
        await SessionsRun.ResetDatabaseAsync(options.Postgres);
        await using var gateway = await Gateway.StartAsync();
        var processes = await StartTargetAsync(lab, spec, gateway.Uri);
        var clients = Clients(processes);
        try
        {
            var agents = Enumerable.Range(options.FirstAgentId, options.Agents).Select(id => new AgentLedger(id)).ToList();
            var counters = new RunCounters();
            var pusher = new Pusher(options, agents, clients, gateway.Client, counters, spec.Rate);
            if (spec.Target == Target.Hub)
            {
                Console.Error.WriteLine($"[{spec.Name}] Signing in {agents.Count} agents through CallbackHub…");
                await SignInAsync(agents, clients, gateway.Client, pusher);
                await ReadBaseSequencesAsync(options.Postgres, agents);
            }

            var byId = agents.ToDictionary(a => a.AgentId);
            await using var consumer = await Consumer.StartAsync(options.RabbitMq, $"loadtest-{lab.RunId}-{spec.Name}", byId, counters);
            var probe = new BacklogProbe(options.Postgres);
            var sampler = new Sampler(processes);
            Console.Error.WriteLine($"[{spec.Name}] Pushing to the {spec.Describe()} for {options.Duration.TotalSeconds} s ({options.WarmUp.TotalSeconds} s warm-up)…");
            var pushing = pusher.RunAsync();
            var freezing = options.Fault == Fault.Freeze && spec.Target == Target.Hub ? FreezeAsync(options, processes, pusher.Start) : null;
            var window = await sampler.RunAsync(options, probe, pushing);
            await pushing;
            var freeze = freezing is null ? null : await freezing;

            var drainSeconds = await DrainAsync(spec.Name, agents, options.DrainTimeout);
            var backlogAfterDrain = await probe.ReadAsync();
            await Task.Delay(1000); // late redeliveries would show as duplicates
            var published = spec.Target == Target.Hub ? await Task.WhenAll(processes.Select(p => HubMetrics.PublishedAsync(p.BaseUri))) : [];
            var paths = spec.Target == Target.Hub ? await Task.WhenAll(processes.Select(p => HubMetrics.OutboxPathsAsync(p.BaseUri))) : [];
            var stats = LegStats.Compute(pusher, agents, counters, window);
            if (freeze is not null)
            {
                freeze = MeasureFreeze(freeze, agents, processes.Count);
            }

            return new LegResult(spec, stats, window, probe.Source, backlogAfterDrain, drainSeconds, [.. processes.Select(p => p.Pid)], published, freeze, paths);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }

            foreach (var process in processes)
            {
                await process.DisposeAsync();
            }
        }
    }

    public static async Task<List<HubProcess>> StartTargetAsync(Lab lab, LegSpec spec, Uri gateway)
    {
        var processes = new List<HubProcess>();
        if (spec.Target == Target.Plain)
        {
            processes.Add(await HubProcess.StartPlainReceiverAsync(lab.Options, Path.Combine(lab.LogDirectory, $"{spec.Name}-plain-receiver.log")));
            return processes;
        }

        try
        {
            for (var i = 0; i < lab.Options.Instances; i++)
            {
                // One after the other: the first applies the migrations.
                processes.Add(await HubProcess.StartAsync(lab.Options, i, gateway, Path.Combine(lab.LogDirectory, $"{spec.Name}-callbackhub-{i}.log")));
            }
        }
        catch
        {
            foreach (var process in processes)
            {
                await process.DisposeAsync();
            }

            throw;
        }

        return processes;
    }

    public static List<HttpClient> Clients(IEnumerable<HubProcess> processes) =>
        [.. processes.Select(h => new HttpClient(new SocketsHttpHandler { UseCookies = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = h.BaseUri,
            Timeout = TimeSpan.FromSeconds(15),
        })];

    /// <summary>Waits until every acknowledged event has reached the consumer, at most <paramref name="timeout"/>; returns the seconds waited.</summary>
    public static async Task<double> DrainAsync(string name, IReadOnlyList<AgentLedger> agents, TimeSpan timeout)
    {
        Console.Error.WriteLine($"[{name}] Draining: waiting until every accepted event reached the consumer (≤ {timeout.TotalSeconds:F0} s)…");
        var drainStart = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(drainStart) < timeout && agents.Any(a => { lock (a) { return a.Sent.Any(e => e.Acked && e.Received == 0); } }))
        {
            await Task.Delay(500);
        }

        return Stopwatch.GetElapsedTime(drainStart).TotalSeconds;
    }

    public static async Task SignInAsync(List<AgentLedger> agents, List<HttpClient> hubs, HttpClient simulator, Pusher pusher)
    {
        var indexes = agents.Select((a, i) => (a, i)).ToDictionary(x => x.a, x => x.i);
        await Parallel.ForEachAsync(agents, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (agent, ct) =>
        {
            var hub = hubs[indexes[agent] % hubs.Count];
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

    /// <summary>Each agent's <c>agent_streams.last_sequence</c> after its sign-in events: its pushed events follow it.</summary>
    public static async Task ReadBaseSequencesAsync(string connectionString, List<AgentLedger> agents)
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

    /// <summary>
    /// At <c>--fault-at</c> (default mid-run): SIGSTOP the instance whose <c>callbackhub_events_published_total</c> is highest
    /// (instance 0 if none publishes or the metric is missing), SIGCONT it <c>--freeze-for</c> later.
    /// </summary>
    private static async Task<FreezeResult> FreezeAsync(LoadOptions options, List<HubProcess> hubs, long start)
    {
        var at = options.FaultAt ?? options.Duration / 2;
        var wait = at - Stopwatch.GetElapsedTime(start);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        var published = await Task.WhenAll(hubs.Select(h => HubMetrics.PublishedAsync(h.BaseUri)));
        var frozen = 0;
        for (var i = 1; i < hubs.Count; i++)
        {
            if ((published[i] ?? 0) > (published[frozen] ?? 0))
            {
                frozen = i;
            }
        }

        Console.Error.WriteLine($"Freeze: published so far {string.Join(" / ", published.Select(p => p?.ToString("F0", CultureInfo.InvariantCulture) ?? "?"))}; SIGSTOP instance {frozen} (pid {hubs[frozen].Pid}) for {options.FreezeFor.TotalSeconds:F0} s…");
        var frozenAt = Stopwatch.GetTimestamp();
        await hubs[frozen].SignalAsync("STOP");
        await Task.Delay(options.FreezeFor);
        await hubs[frozen].SignalAsync("CONT");
        var continuedAt = Stopwatch.GetTimestamp();
        Console.Error.WriteLine($"Freeze: SIGCONT instance {frozen}.");
        return new FreezeResult(frozen, published, frozenAt, continuedAt, null, 0, 0);
    }

    /// <summary>
    /// What the consumer saw of the events pushed to the live instances (agent i pushes to instance i mod n): publishing
    /// resumed at the first arrival of such an event pushed after the freeze began; the longest gap is between their
    /// first arrivals from the freeze until SIGCONT (the freeze's start and end counting as arrivals).
    /// </summary>
    private static FreezeResult MeasureFreeze(FreezeResult freeze, List<AgentLedger> agents, int instances)
    {
        var live = agents.Where((_, i) => i % instances != freeze.Instance).SelectMany(a => a.Sent).Where(e => e.Received > 0).ToList();
        var resumedAt = live.Where(e => e.PushedAt >= freeze.FrozenAt).Select(e => e.ReceivedAt).DefaultIfEmpty(0).Min();
        var arrivals = live.Select(e => e.ReceivedAt).Where(t => t >= freeze.FrozenAt && t <= freeze.ContinuedAt).Order().Prepend(freeze.FrozenAt)
            .Append(freeze.ContinuedAt).ToArray();
        var gap = arrivals.Zip(arrivals.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max();
        var pushed = agents.Where((_, i) => i % instances != freeze.Instance).SelectMany(a => a.Sent)
            .LongCount(e => e.PushedAt >= freeze.FrozenAt && e.PushedAt < freeze.ContinuedAt);
        return freeze with
        {
            ResumeSeconds = resumedAt == 0 ? null : RunCounters.Milliseconds(freeze.FrozenAt, resumedAt) / 1000,
            LongestGapSeconds = Math.Max(0, gap) / (double)Stopwatch.Frequency,
            LiveEventsPushedDuringFreeze = pushed,
        };
    }
}

/// <summary>Reads CallbackHub's Prometheus counters from an instance's <c>/metrics</c>.</summary>
internal static class HubMetrics
{
    public const string Published = "callbackhub_events_published_total";

    /// <summary>
    /// The sum of every <see cref="Published"/> series; 0 when the instance answers without one (OpenTelemetry exports a
    /// counter only from its first increment: an instance that never published), null when it does not answer (frozen, gone).
    /// </summary>
    public static async Task<double?> PublishedAsync(Uri baseUri) => await ScrapeAsync(baseUri) is { } text ? Sum(text, Published) : null;

    /// <summary>How the instance's outbox sent its messages, and how often pushes waited for it, in one line.</summary>
    public static async Task<string> OutboxPathsAsync(Uri baseUri) => await ScrapeAsync(baseUri) is { } text
        ? $"handoff {Sum(text, "callbackhub_outbox_sent_total", "path=\"handoff\""):F0}, read-back {Sum(text, "callbackhub_outbox_sent_total", "path=\"read-back\""):F0}; "
          + $"pushes that waited for the publisher {Sum(text, "callbackhub_outbox_ingest_waits_total"):F0}"
        : "no answer";

    private static async Task<string?> ScrapeAsync(Uri baseUri)
    {
        using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            return await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>The sum of the series of <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    private static double Sum(string text, string name, string label = "")
    {
        var sum = 0.0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is ' ' or '{'
                && line.Contains(label, StringComparison.Ordinal))
            {
                // name{labels} value [timestamp]
                var rest = line[(line.LastIndexOf('}') is var close and >= 0 ? close + 1 : name.Length)..].Trim().Split(' ');
                sum += double.Parse(rest[0], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }
}
