using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using CallbackHub.LoadTest.Sessions;

namespace CallbackHub.LoadTest;

/// <summary>
/// <c>--scenario backlog</c>: with CallbackHub running, stop RabbitMQ's application (<c>rabbitmqctl stop_app</c>), push
/// <c>--backlog-events</c> events (CallbackHub must keep accepting them), start it again (<c>start_app</c>) and measure how
/// fast the backlog reaches the consumer, against the broker ceiling of the same run; every event is checked as in a load
/// run (lost, duplicated, per-agent order of first arrivals as they come, content).
/// </summary>
internal static class BacklogRun
{
    public static async Task RunAsync(Lab lab, string loadBefore)
    {
        var options = lab.Options;
        await SessionsRun.ResetDatabaseAsync(options.Postgres);
        Console.Error.WriteLine($"Broker ceiling: confirmed publishes, {options.Concurrency} in flight, {options.BaselineDuration.TotalSeconds} s…");
        var ceiling = await Baselines.PublishCeilingAsync(options.RabbitMq, options.Concurrency, options.BaselineDuration);
        Console.Error.WriteLine($"Broker ceiling: {ceiling:F0} msg/s.");

        var spec = new LegSpec("backlog", Target.Hub, 0);
        await using var gateway = await Gateway.StartAsync();
        var hubs = await PushLeg.StartTargetAsync(lab, spec, gateway.Uri);
        var clients = PushLeg.Clients(hubs);
        var brokerStopped = false;
        try
        {
            var agents = Enumerable.Range(options.FirstAgentId, options.Agents).Select(id => new AgentLedger(id)).ToList();
            var counters = new RunCounters();
            var pusher = new Pusher(options, agents, clients, gateway.Client, counters, 0, options.BacklogEvents);
            Console.Error.WriteLine($"Signing in {agents.Count} agents through CallbackHub…");
            await PushLeg.SignInAsync(agents, clients, gateway.Client, pusher);
            await PushLeg.ReadBaseSequencesAsync(options.Postgres, agents);
            var byId = agents.ToDictionary(a => a.AgentId);
            var queue = $"loadtest-{lab.RunId}-backlog";

            // Declare and bind the durable queue while the broker runs; it keeps what CallbackHub publishes while we reconnect.
            var first = await Consumer.StartAsync(options.RabbitMq, queue, byId, counters);
            var probe = new BacklogProbe(options.Postgres);
            await probe.ReadAsync();
            await Task.Delay(2000); // the sign-in events
            await first.DetachAsync();

            Console.Error.WriteLine($"Stopping RabbitMQ (rabbitmqctl{Node(options)} stop_app)…");
            await Broker.RunAsync(options.RabbitMqNode, "stop_app");
            brokerStopped = true;
            var stoppedAt = Stopwatch.GetTimestamp();

            Console.Error.WriteLine($"Pushing {options.BacklogEvents} events with the broker stopped (closed loop, ≤ {options.Duration.TotalSeconds:F0} s)…");
            var pushStart = Stopwatch.GetTimestamp();
            var cpuAtPushStart = Cpu(hubs);
            await pusher.RunAsync();
            var pushEnd = Stopwatch.GetTimestamp();
            var cpuAtPushEnd = Cpu(hubs);
            var backlogBefore = await probe.ReadAsync();
            var acked = agents.Sum(a => a.Sent.Count(e => e.Acked));
            Console.Error.WriteLine($"{acked} events accepted in {RunCounters.Milliseconds(pushStart, pushEnd) / 1000:F1} s; backlog {backlogBefore}.");

            Console.Error.WriteLine($"Starting RabbitMQ (rabbitmqctl{Node(options)} start_app)…");
            var startCommandAt = Stopwatch.GetTimestamp();
            await Broker.RunAsync(options.RabbitMqNode, "start_app");
            brokerStopped = false;
            var startedAt = Stopwatch.GetTimestamp();
            var cpuAtStart = Cpu(hubs);
            await using var consumer = await ConnectAsync(options.RabbitMq, queue, byId, counters);
            var connectedAt = Stopwatch.GetTimestamp();
            var drainSeconds = await PushLeg.DrainAsync("backlog", agents, options.DrainTimeout);
            var cpuAtEnd = Cpu(hubs);
            var backlogAfter = await probe.ReadAsync();
            await Task.Delay(1000); // late redeliveries would show as duplicates
            var published = await Task.WhenAll(hubs.Select(h => HubMetrics.PublishedAsync(h.BaseUri)));

            var all = agents.SelectMany(a => a.Sent).ToList();
            var received = all.Where(e => e.Received > 0).ToList();
            var firstArrival = received.Count == 0 ? 0 : received.Min(e => e.ReceivedAt);
            var lastArrival = received.Count == 0 ? 0 : received.Max(e => e.ReceivedAt);
            var drainedIn = RunCounters.Milliseconds(startedAt, lastArrival) / 1000;
            var rate = received.Count / drainedIn;
            var lost = all.Count(e => e.Acked && e.Received == 0);
            var mismatched = received.Count(e => e.ReceivedType != e.Type || !JsonNode.DeepEquals(JsonNode.Parse(e.Content), JsonNode.Parse(e.ReceivedContent!)));
            var ackMs = pusher.AckLatencies.Select(p => p.Ms).Order().ToArray();
            var pushSeconds = RunCounters.Milliseconds(pushStart, pushEnd) / 1000;

            var rows = new List<(string, string)>
            {
                ("run", $"{lab.RunId}, {options.Agents} agents, {options.Instances} CallbackHub instance(s), {options.MinEventsPerPush}–{options.MaxEventsPerPush} events/push, "
                    + $"{options.BacklogEvents} events pushed closed loop with the broker stopped"),
                ("machine", $"{Environment.ProcessorCount} cores; load average before {loadBefore}, after {Machine.LoadAverage()}"),
                ("broker ceiling: confirmed publishes (MassTransit → durable queue)", $"{ceiling:F0} msg/s at {options.Concurrency} in flight"),
                ("while the broker was stopped: accepted / refused or failed push attempts / never acked",
                    $"{acked} events in {pushSeconds:F1} s = {acked / pushSeconds:F0} events/s; {counters.Rejected}; {all.Count(e => !e.Acked)}"),
                ("while the broker was stopped: ack p50 / p99 / max", Report.Percentiles(ackMs, 0.50, 0.99, 1.0)),
                ($"outbox backlog ({probe.Source}) before start_app / after the drain", $"{backlogBefore} / {backlogAfter} events"),
                ("start_app took / consumer reconnected after", $"{RunCounters.Milliseconds(startCommandAt, startedAt) / 1000:F1} s / {RunCounters.Milliseconds(startedAt, connectedAt) / 1000:F1} s"),
                ("first arrival after start_app returned (negative: before)", received.Count == 0 ? "none" : $"{RunCounters.Milliseconds(startedAt, firstArrival) / 1000:F1} s"),
                ("all arrived after start_app returned / was issued", lost == 0 && received.Count > 0
                    ? $"{drainedIn:F1} s / {RunCounters.Milliseconds(startCommandAt, lastArrival) / 1000:F1} s"
                    : $"not all: {received.Count} of {acked} after {drainSeconds:F0} s of waiting"),
                ("**drain rate** (events received ÷ time from start_app returned to the last first arrival)",
                    $"**{rate:F0} events/s = {rate / ceiling:P0} of the broker ceiling**"),
                ("drain rate counted from start_app issued / from the first arrival", received.Count > 1
                    ? $"{received.Count / (RunCounters.Milliseconds(startCommandAt, lastArrival) / 1000):F0} / "
                        + $"{received.Count / (RunCounters.Milliseconds(firstArrival, lastArrival) / 1000):F0} events/s"
                    : "n/a"),
                ("lost (acked, never received) / duplicated / order violations (first arrivals, as they came) / content mismatches / unexpected",
                    $"{lost} / {counters.Duplicates} / {counters.OrderViolations} / {mismatched} / {counters.Unexpected} of {acked} acked events"),
                ("CallbackHub CPU while pushing / while draining", $"{(cpuAtPushEnd - cpuAtPushStart).TotalSeconds / pushSeconds:F2} cores / "
                    + $"{(cpuAtEnd - cpuAtStart).TotalSeconds / Math.Max(0.001, drainSeconds + RunCounters.Milliseconds(startedAt, connectedAt) / 1000):F2} cores"),
                ($"published per instance ({HubMetrics.Published} at the end)", Report.PublishedShares(published)),
                ("broker stopped for", $"{RunCounters.Milliseconds(stoppedAt, startedAt) / 1000:F1} s"),
            };
            Console.WriteLine("| metric | value |");
            Console.WriteLine("|---|---|");
            foreach (var (name, value) in rows)
            {
                Console.WriteLine($"| {name} | {value} |");
            }
        }
        finally
        {
            if (brokerStopped)
            {
                // Never leave the node stopped.
                await Broker.RunAsync(options.RabbitMqNode, "start_app");
            }

            foreach (var client in clients)
            {
                client.Dispose();
            }

            foreach (var hub in hubs)
            {
                await hub.DisposeAsync();
            }
        }
    }

    private static string Node(LoadOptions options) => options.RabbitMqNode is { } node ? $" -n {node}" : "";

    private static TimeSpan Cpu(IEnumerable<HubProcess> hubs) => hubs.Aggregate(TimeSpan.Zero, (sum, h) => sum + h.CpuTime());

    /// <summary>The node accepts connections a moment after start_app returns: retry for up to a minute.</summary>
    private static async Task<Consumer> ConnectAsync(string amqpUri, string queue, Dictionary<int, AgentLedger> agents, RunCounters counters)
    {
        var deadline = Stopwatch.GetTimestamp() + (60 * Stopwatch.Frequency);
        while (true)
        {
            try
            {
                return await Consumer.StartAsync(amqpUri, queue, agents, counters);
            }
            catch (Exception e) when (Stopwatch.GetTimestamp() < deadline
                && e is IOException or System.Net.Sockets.SocketException or RabbitMQ.Client.Exceptions.RabbitMQClientException)
            {
                await Task.Delay(200);
            }
        }
    }
}

/// <summary>Runs <c>rabbitmqctl [-n node] command</c> on this machine.</summary>
internal static class Broker
{
    public static async Task RunAsync(string? node, string command)
    {
        var start = new ProcessStartInfo("rabbitmqctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (node is not null)
        {
            start.ArgumentList.Add("-n");
            start.ArgumentList.Add(node);
        }

        start.ArgumentList.Add(command);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("rabbitmqctl did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var (stdout, stderr) = (await output, await error);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"rabbitmqctl {command} exited with {process.ExitCode}: {stdout} {stderr}"));
        }
    }
}
