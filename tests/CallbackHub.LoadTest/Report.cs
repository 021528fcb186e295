using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace CallbackHub.LoadTest;

/// <summary>The numbers of one leg, over the measurement window (after the warm-up, until the pushing stops).</summary>
internal sealed record LegStats(
    double Seconds, double Offered, double AcceptedEvents, double AcceptedPushes, double EndToEnd, double[] AckMs, double[] ToConsumerMs,
    long Lost, long Duplicates, long OrderViolations, long Mismatched, long Unexpected, long Acked, long Unacked, long Rejected, double CpuCores, double MicrosecondsPerEvent)
{
    public static LegStats Compute(Pusher pusher, IReadOnlyList<AgentLedger> agents, RunCounters counters, Window window)
    {
        var seconds = RunCounters.Milliseconds(window.StartTimestamp, window.EndTimestamp) / 1000;
        bool InWindow(long t) => t >= window.StartTimestamp && t < window.EndTimestamp;

        var all = agents.SelectMany(a => a.Sent).ToList();
        var acceptedEvents = all.Count(e => e.Acked && InWindow(e.PushedAt)) / seconds;
        return new LegStats(
            seconds,
            all.Count(e => InWindow(e.PushedAt)) / seconds,
            acceptedEvents,
            pusher.AckLatencies.Count(p => InWindow(p.DueAt + (long)(p.Ms * Stopwatch.Frequency / 1000))) / seconds,
            all.Count(e => e.Received > 0 && InWindow(e.ReceivedAt)) / seconds,
            [.. pusher.AckLatencies.Where(p => InWindow(p.DueAt)).Select(p => p.Ms).Order()],
            [.. all.Where(e => e.Received > 0 && InWindow(e.PushedAt)).Select(e => RunCounters.Milliseconds(e.PushedAt, e.ReceivedAt)).Order()],
            all.Count(e => e.Acked && e.Received == 0),
            counters.Duplicates,
            counters.OrderViolations,
            all.Count(e => e.Received > 0 && (e.ReceivedType != e.Type
                || !JsonNode.DeepEquals(JsonNode.Parse(e.Content), JsonNode.Parse(e.ReceivedContent!)))),
            counters.Unexpected,
            all.Count(e => e.Acked),
            all.Count(e => !e.Acked),
            counters.Rejected,
            window.HubCpu.TotalSeconds / seconds,
            window.HubCpu.TotalMilliseconds * 1000 / Math.Max(1, acceptedEvents * seconds));
    }

    /// <summary>Nearest-rank-ish quantile of a sorted array, NaN when empty.</summary>
    public static double Quantile(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
}

/// <summary>Turns a single-target run into ONE markdown table.</summary>
internal static class Report
{
    public static void Print(
        LoadOptions options, string runId, LegResult leg, double? publishCeiling, double? commitCeiling, string loadBefore, string loadAfter)
    {
        var (s, window) = (leg.Stats, leg.Window);
        var seconds = s.Seconds;
        var target = leg.Spec.Target == Target.Plain ? "plain receiver" : $"{options.Instances} CallbackHub instance(s)";
        var process = leg.Spec.Target == Target.Plain ? "Plain receiver" : "CallbackHub";
        var rows = new List<(string, string)>
        {
            ("run", $"{runId}, {options.Agents} agents, {target}, {options.MinEventsPerPush}–{options.MaxEventsPerPush} events/push, "
                + $"{(options.Rate > 0 ? $"open loop {options.Rate:F0} events/s" : "closed loop (max)")}, {options.Duration.TotalSeconds:F0} s incl. {options.WarmUp.TotalSeconds:F0} s warm-up"),
            ("machine", $"{Environment.ProcessorCount} cores; load average before {loadBefore}, after {loadAfter}; all cores busy {window.MachineBusyCores:F2} of {Environment.ProcessorCount} during the window"),
            ("baseline: confirmed publishes (MassTransit → durable queue)", publishCeiling is { } p ? $"{p:F0} msg/s at {options.Concurrency} in flight" : "not measured"),
            ("baseline: PostgreSQL single-row commits", commitCeiling is { } c ? $"{c:F0} commits/s at {options.Concurrency} connections" : "not measured"),
            ("offered", $"{s.Offered:F0} events/s"),
            ("accepted (acked)", $"{s.AcceptedEvents:F0} events/s ({s.AcceptedPushes:F0} pushes/s)"),
            ("end to end (received by the consumer)", $"{s.EndToEnd:F0} events/s" + (publishCeiling is { } pc ? $" = **{s.EndToEnd / pc:P0} of the publish ceiling**" : "")),
            ("ack latency p50 / p95 / p99 / max", Percentiles(s.AckMs, 0.50, 0.95, 0.99, 1.0)),
            ("push → consumer p50 / p99 / max", Percentiles(s.ToConsumerMs, 0.50, 0.99, 1.0)),
            ($"outbox backlog ({leg.BacklogSource}): end of load / max seen / after drain", leg.BacklogAfterDrain is null
                ? "no outbox"
                : $"{window.BacklogAtEnd} / {window.MaxBacklog} / {leg.BacklogAfterDrain} events (drain took {leg.DrainSeconds:F1} s)"),
            ("lost (acked, never received) / duplicated / order violations / content mismatches",
                $"{s.Lost} / {s.Duplicates} / {s.OrderViolations} / {s.Mismatched} of {s.Acked} acked events"),
            ("unexpected arrivals (a sequence beyond the agent's pushed events, or an unknown agent)", $"{s.Unexpected}"),
            ("refused or failed push attempts (retried) / never acked", $"{s.Rejected} / {s.Unacked}"),
            ($"{process} CPU", $"{s.CpuCores:F2} cores = {s.MicrosecondsPerEvent:F0} µs per accepted event"),
            ($"where the cores went (cores): {process} / PostgreSQL / RabbitMQ / load tool / rest of the machine", $"{s.CpuCores:F2} / {window.PostgresCpu.TotalSeconds / seconds:F2} / "
                + $"{window.RabbitMqCpu.TotalSeconds / seconds:F2} / {window.ToolCpu.TotalSeconds / seconds:F2} / "
                + $"{window.MachineBusyCores - ((window.HubCpu + window.PostgresCpu + window.RabbitMqCpu + window.ToolCpu).TotalSeconds / seconds):F2}"),
            ($"{process} memory (RSS after warm-up → max → end; VmHWM)", string.Join("; ", window.Memory.Select((m, i) =>
                $"#{i} pid {leg.Pids[i]}: {m.RssStart:F0} → {m.RssMax:F0} → {m.RssEnd:F0} MiB; peak {m.Peak:F0} MiB"))),
        };
        if (leg.Spec.Target == Target.Hub)
        {
            rows.Add(($"published per instance ({HubMetrics.Published} at the end)", PublishedShares(leg.PublishedPerInstance)));
            rows.Add(("outbox sends by path per instance (callbackhub_outbox_sent_total, _ingest_waits_total)", OutboxPaths(leg.OutboxPaths)));
        }

        if (leg.Freeze is { } f)
        {
            rows.Add(("freeze", $"SIGSTOP instance #{f.Instance} (published so far: {PublishedShares(f.PublishedBefore)}) "
                + $"for {RunCounters.Milliseconds(f.FrozenAt, f.ContinuedAt) / 1000:F1} s; {f.LiveEventsPushedDuringFreeze} events pushed to the live instance(s) meanwhile"));
            rows.Add(("freeze: publishing resumed (first arrival of an event pushed to a live instance after the SIGSTOP) / longest arrival gap of live-instance events",
                $"**{(f.ResumeSeconds is { } r ? $"{r:F1} s" : "never")}** (target ≤ 15 s){(f.ResumeSeconds is { } r2 && f.FrozenAt + (long)(r2 * Stopwatch.Frequency) >= f.ContinuedAt ? ", only after the SIGCONT" : "")}"
                + $" / {f.LongestGapSeconds:F1} s"));
        }

        Console.WriteLine("| metric | value |");
        Console.WriteLine("|---|---|");
        foreach (var (name, value) in rows)
        {
            Console.WriteLine($"| {name} | {value} |");
        }
    }

    /// <summary><c>#0 1234 (56 %) / #1 987 (44 %)</c>; <c>?</c> for an instance whose metric could not be read.</summary>
    public static string OutboxPaths(IReadOnlyList<string> paths) => string.Join("; ", paths.Select((p, i) => $"#{i} {p}"));

    public static string PublishedShares(IReadOnlyList<double?> published)
    {
        var total = published.Sum(p => p ?? 0);
        return string.Join(" / ", published.Select((p, i) => p is { } v
            ? $"#{i} {v.ToString("F0", CultureInfo.InvariantCulture)} ({(total > 0 ? v / total : 0):P0})"
            : $"#{i} ?"));
    }

    public static string Percentiles(double[] sorted, params double[] quantiles) => sorted.Length == 0
        ? "n/a"
        : string.Join(" / ", quantiles.Select(q => $"{LegStats.Quantile(sorted, q):F1}")) + " ms";
}
