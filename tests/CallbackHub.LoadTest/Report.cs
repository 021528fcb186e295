using System.Diagnostics;
using System.Text.Json.Nodes;

namespace CallbackHub.LoadTest;

/// <summary>Turns the run into ONE markdown table.</summary>
internal static class Report
{
    public static void Print(
        LoadOptions options, string runId, Pusher pusher, IReadOnlyList<AgentLedger> agents, RunCounters counters, Window window,
        double? publishCeiling, double? commitCeiling, long backlogAfterDrain, double drainSeconds, string loadBefore, string loadAfter,
        IReadOnlyList<HubProcess> hubs)
    {
        var seconds = RunCounters.Milliseconds(window.StartTimestamp, window.EndTimestamp) / 1000;
        bool InWindow(long t) => t >= window.StartTimestamp && t < window.EndTimestamp;

        var all = agents.SelectMany(a => a.Sent).ToList();
        var offered = all.Count(e => InWindow(e.PushedAt)) / seconds;
        var pushes = pusher.AckLatencies.Where(p => InWindow(p.DueAt)).Select(p => p.Ms).Order().ToArray();
        var accepted = pusher.AckLatencies.Count(p => InWindow(p.DueAt + (long)(p.Ms * Stopwatch.Frequency / 1000))) / seconds;
        var acceptedEvents = all.Count(e => e.Acked && InWindow(e.PushedAt)) / seconds;
        var endToEnd = all.Count(e => e.Received > 0 && InWindow(e.ReceivedAt)) / seconds;
        var toConsumer = all.Where(e => e.Received > 0 && InWindow(e.PushedAt))
            .Select(e => RunCounters.Milliseconds(e.PushedAt, e.ReceivedAt)).Order().ToArray();
        var lost = all.Count(e => e.Acked && e.Received == 0);
        var unacked = all.Count(e => !e.Acked);
        var mismatched = all.Count(e => e.Received > 0 && (e.ReceivedType != e.Type
            || !JsonNode.DeepEquals(JsonNode.Parse(e.Content), JsonNode.Parse(e.ReceivedContent!))));
        var cpuCores = window.HubCpu.TotalSeconds / seconds;

        var rows = new List<(string, string)>
        {
            ("run", $"{runId}, {options.Agents} agents, {options.Instances} CallbackHub instance(s), {options.MinEventsPerPush}–{options.MaxEventsPerPush} events/push, "
                + $"{(options.Rate > 0 ? $"open loop {options.Rate:F0} events/s" : "closed loop (max)")}, {options.Duration.TotalSeconds:F0} s incl. {options.WarmUp.TotalSeconds:F0} s warm-up"),
            ("machine", $"{Environment.ProcessorCount} cores; load average before {loadBefore}, after {loadAfter}; all cores busy {window.MachineBusyCores:F2} of {Environment.ProcessorCount} during the window"),
            ("baseline: confirmed publishes (MassTransit → durable queue)", publishCeiling is { } p ? $"{p:F0} msg/s at {options.Concurrency} in flight" : "not measured"),
            ("baseline: PostgreSQL single-row commits", commitCeiling is { } c ? $"{c:F0} commits/s at {options.Concurrency} connections" : "not measured"),
            ("offered", $"{offered:F0} events/s"),
            ("accepted (acked)", $"{acceptedEvents:F0} events/s ({accepted:F0} pushes/s)"),
            ("end to end (received by the consumer)", $"{endToEnd:F0} events/s" + (publishCeiling is { } pc ? $" = **{endToEnd / pc:P0} of the publish ceiling**" : "")),
            ("ack latency p50 / p95 / p99 / max", Percentiles(pushes, 0.50, 0.95, 0.99, 1.0)),
            ("push → consumer p50 / p99 / max", Percentiles(toConsumer, 0.50, 0.99, 1.0)),
            ("outbox backlog: end of load / max seen / after drain", $"{window.BacklogAtEnd} / {window.MaxBacklog} / {backlogAfterDrain} rows (drain took {drainSeconds:F1} s)"),
            ("lost (acked, never received) / duplicated / order violations / content mismatches",
                $"{lost} / {counters.Duplicates} / {counters.OrderViolations} / {mismatched} of {all.Count(e => e.Acked)} acked events"),
            ("refused or failed push attempts (retried) / never acked", $"{counters.Rejected} / {unacked}"),
            ("CallbackHub CPU", $"{cpuCores:F2} cores = {window.HubCpu.TotalMilliseconds * 1000 / Math.Max(1, acceptedEvents * seconds):F0} µs per accepted event"),
            ("where the cores went (cores): CallbackHub / PostgreSQL / RabbitMQ / load tool / rest of the machine", $"{cpuCores:F2} / {window.PostgresCpu.TotalSeconds / seconds:F2} / "
                + $"{window.RabbitMqCpu.TotalSeconds / seconds:F2} / {window.ToolCpu.TotalSeconds / seconds:F2} / "
                + $"{window.MachineBusyCores - ((window.HubCpu + window.PostgresCpu + window.RabbitMqCpu + window.ToolCpu).TotalSeconds / seconds):F2}"),
            ("CallbackHub memory (RSS after warm-up → max → end; VmHWM)", string.Join("; ", window.Memory.Select((m, i) =>
                $"#{i} pid {hubs[i].Pid}: {m.RssStart:F0} → {m.RssMax:F0} → {m.RssEnd:F0} MiB; peak {m.Peak:F0} MiB"))),
        };

        Console.WriteLine("| metric | value |");
        Console.WriteLine("|---|---|");
        foreach (var (name, value) in rows)
        {
            Console.WriteLine($"| {name} | {value} |");
        }
    }

    private static string Percentiles(double[] sorted, params double[] quantiles) => sorted.Length == 0
        ? "n/a"
        : string.Join(" / ", quantiles.Select(q => $"{sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))]:F1}")) + " ms";
}
