using System.Globalization;
using CallbackHub.LoadTest.Sessions;

namespace CallbackHub.LoadTest;

/// <summary>
/// <c>--target both</c>: in one run, the broker ceiling, the plain receiver and CallbackHub under the same closed-loop
/// load, in one table with the ratios; with <c>--half-load true</c> both again, open loop at half the rate the plain
/// receiver reached, against the latency targets.
/// </summary>
internal static class CompareRun
{
    public static async Task RunAsync(Lab lab, string loadBefore)
    {
        var options = lab.Options;
        double? ceiling = null, withConsumer = null;
        if (options.Baselines)
        {
            await SessionsRun.ResetDatabaseAsync(options.Postgres);
            Console.Error.WriteLine($"Broker ceiling: confirmed publishes, {options.Concurrency} in flight, {options.BaselineDuration.TotalSeconds} s…");
            ceiling = await Baselines.PublishCeilingAsync(options.RabbitMq, options.Concurrency, options.BaselineDuration);
            Console.Error.WriteLine($"Broker ceiling: {ceiling:F0} msg/s.");
            Console.Error.WriteLine($"Broker ceiling with a consumer: the same, while a consumer like this tool's takes them off the queue, {options.BaselineDuration.TotalSeconds} s…");
            withConsumer = await Baselines.PublishCeilingAsync(options.RabbitMq, options.Concurrency, options.BaselineDuration, withConsumer: true);
            Console.Error.WriteLine($"Broker ceiling with a consumer: {withConsumer:F0} msg/s received.");
        }

        List<(LegResult Plain, LegResult Hub)> pairs = [];
        for (var round = 1; round <= options.Rounds; round++)
        {
            var suffix = options.Rounds > 1 ? $"-{round}" : "";
            var plain = await PushLeg.RunAsync(lab, new LegSpec("plain-max" + suffix, Target.Plain, 0));
            Console.Error.WriteLine($"Plain receiver: {plain.Stats.EndToEnd:F0} events/s end to end.");
            var hub = await PushLeg.RunAsync(lab, new LegSpec("hub-max" + suffix, Target.Hub, 0));
            Console.Error.WriteLine($"CallbackHub: {hub.Stats.EndToEnd:F0} events/s end to end.");
            if (round > 1)
            {
                Console.WriteLine();
                Console.WriteLine($"Round {round} of {options.Rounds}:");
            }

            var loadAfter = Machine.LoadAverage();
            PrintClosedLoop(lab, ceiling, plain, hub, loadBefore, loadAfter);
            PrintConsumerCeiling(withConsumer, plain, hub);
            loadBefore = loadAfter;
            pairs.Add((plain, hub));
        }

        if (pairs.Count > 1)
        {
            PrintRounds(pairs, ceiling);
            if (withConsumer is { } c)
            {
                Console.WriteLine($"Broker ceiling with a consumer: {N(c)} msg/s; median CallbackHub ÷ that: "
                    + $"{Median([.. pairs.Select(p => p.Hub.Stats.EndToEnd)]) / c:P0}, plain receiver ÷ that: {Median([.. pairs.Select(p => p.Plain.Stats.EndToEnd)]) / c:P0}.");
            }
        }

        if (options.HalfLoad)
        {
            // Half of the median plain receiver of the rounds (of the one pair without --rounds).
            var rate = Math.Round(Median([.. pairs.Select(p => p.Plain.Stats.EndToEnd)]) / 2);
            Console.Error.WriteLine($"Half load: open loop at {rate:F0} events/s, half the plain receiver's closed-loop end to end…");
            var plainHalf = await PushLeg.RunAsync(lab, new LegSpec("plain-half", Target.Plain, rate));
            var hubHalf = await PushLeg.RunAsync(lab, new LegSpec("hub-half", Target.Hub, rate));
            Console.WriteLine();
            PrintHalfLoad(rate, plainHalf, hubHalf);
        }
    }

    private static void PrintClosedLoop(Lab lab, double? ceiling, LegResult plain, LegResult hub, string loadBefore, string loadAfter)
    {
        var o = lab.Options;
        var (p, h) = (plain.Stats, hub.Stats);
        Console.WriteLine($"Run {lab.RunId}: {o.Agents} agents, {o.MinEventsPerPush}–{o.MaxEventsPerPush} events/push, closed loop (--rate max), "
            + $"{o.Duration.TotalSeconds:F0} s per target incl. {o.WarmUp.TotalSeconds:F0} s warm-up, {o.Instances} CallbackHub instance(s); "
            + $"{Environment.ProcessorCount} cores, load average before {loadBefore}, after {loadAfter}.");
        Console.WriteLine();
        Console.WriteLine("| metric | broker ceiling | plain receiver | CallbackHub | CallbackHub ÷ plain receiver | CallbackHub ÷ broker ceiling |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        Row("events/s end to end (accepted → on a bound durable queue)",
            ceiling is { } c ? $"{c:F0} msg/s ({o.Concurrency} in flight)" : "not measured", N(p.EndToEnd), N(h.EndToEnd), Ratio(h.EndToEnd, p.EndToEnd),
            ceiling is { } c2 ? $"**{h.EndToEnd / c2:P0}**" : "–");
        Row("events/s accepted (acked)", "–", N(p.AcceptedEvents), N(h.AcceptedEvents), Ratio(h.AcceptedEvents, p.AcceptedEvents), "–");
        Row("ack p50 (ms)", "–", Ms(p.AckMs, 0.5), Ms(h.AckMs, 0.5), Ratio(LegStats.Quantile(h.AckMs, 0.5), LegStats.Quantile(p.AckMs, 0.5)), "–");
        Row("ack p99 (ms)", "–", Ms(p.AckMs, 0.99), Ms(h.AckMs, 0.99), Ratio(LegStats.Quantile(h.AckMs, 0.99), LegStats.Quantile(p.AckMs, 0.99)), "–");
        Row("push → consumer p50 (ms)", "–", Ms(p.ToConsumerMs, 0.5), Ms(h.ToConsumerMs, 0.5),
            Ratio(LegStats.Quantile(h.ToConsumerMs, 0.5), LegStats.Quantile(p.ToConsumerMs, 0.5)), "–");
        Row("push → consumer p99 (ms)", "–", Ms(p.ToConsumerMs, 0.99), Ms(h.ToConsumerMs, 0.99),
            Ratio(LegStats.Quantile(h.ToConsumerMs, 0.99), LegStats.Quantile(p.ToConsumerMs, 0.99)), "–");
        Row("lost / duplicated / order violations / content mismatches / unexpected", "–", Integrity(p), Integrity(h), "–", "–");
        Row("refused or failed push attempts / never acked", "–", $"{p.Rejected} / {p.Unacked}", $"{h.Rejected} / {h.Unacked}", "–", "–");
        Row("target process CPU (cores; µs per accepted event)", "–", Cpu(p), Cpu(h), Ratio(h.MicrosecondsPerEvent, p.MicrosecondsPerEvent) + " per event", "–");
        Row("PostgreSQL / RabbitMQ / load tool / rest (cores)", "–", Cores(plain), Cores(hub), "–", "–");
        Row("all cores busy (of " + Environment.ProcessorCount + ")", "–", N2(plain.Window.MachineBusyCores), N2(hub.Window.MachineBusyCores), "–", "–");
        Row("target RSS max (MiB)", "–", Rss(plain), Rss(hub), "–", "–");
        Row("outbox backlog: end of load / after drain (events)", "–", "no outbox", $"{hub.Window.BacklogAtEnd} / {hub.BacklogAfterDrain}", "–", "–");
        Row($"published per instance ({HubMetrics.Published})", "–", "–", Report.PublishedShares(hub.PublishedPerInstance), "–", "–");
        Row("outbox sends by path per instance (callbackhub_outbox_sent_total, _ingest_waits_total)", "–", "–", Report.OutboxPaths(hub.OutboxPaths), "–", "–");
    }

    /// <summary>
    /// The bare ceiling has no consumer; every leg has one, and delivering and acknowledging costs the broker about as much
    /// as taking a message in. Against the ceiling with a consumer, what is left for CallbackHub to win is plain.
    /// </summary>
    private static void PrintConsumerCeiling(double? withConsumer, LegResult plain, LegResult hub)
    {
        if (withConsumer is not { } c)
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine($"Broker ceiling with a consumer attached (the same publisher, {N(c)} msg/s received): "
            + $"CallbackHub {hub.Stats.EndToEnd / c:P0} of it, plain receiver {plain.Stats.EndToEnd / c:P0}; "
            + $"1.3× the plain receiver would be {1.3 * plain.Stats.EndToEnd / c:P0} of it.");
    }

    /// <summary>Every round's pair in one table, in the order they ran, and the median ratio: what a single pair cannot say.</summary>
    private static void PrintRounds(List<(LegResult Plain, LegResult Hub)> pairs, double? ceiling)
    {
        Console.WriteLine();
        Console.WriteLine($"All {pairs.Count} rounds, in the order they ran (closed loop, events/s end to end):");
        Console.WriteLine();
        Console.WriteLine("| round | plain receiver | CallbackHub | CallbackHub ÷ plain receiver | CallbackHub ÷ broker ceiling | CallbackHub µs per event | lost / dup / order (CallbackHub) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---|");
        for (var i = 0; i < pairs.Count; i++)
        {
            var (p, h) = (pairs[i].Plain.Stats, pairs[i].Hub.Stats);
            Console.WriteLine($"| {i + 1} | {N(p.EndToEnd)} | {N(h.EndToEnd)} | {Ratio(h.EndToEnd, p.EndToEnd)} | "
                + $"{(ceiling is { } c ? (h.EndToEnd / c).ToString("P0", CultureInfo.InvariantCulture) : "–")} | {h.MicrosecondsPerEvent:F0} | "
                + $"{h.Lost} / {h.Duplicates} / {h.OrderViolations} |");
        }

        var ratios = pairs.Select(p => p.Hub.Stats.EndToEnd / p.Plain.Stats.EndToEnd).ToArray();
        Console.WriteLine($"| **median** | {N(Median([.. pairs.Select(p => p.Plain.Stats.EndToEnd)]))} | {N(Median([.. pairs.Select(p => p.Hub.Stats.EndToEnd)]))} | "
            + $"**{Median(ratios):F2}×** (range {ratios.Min():F2}–{ratios.Max():F2}×) | – | – | – |");
    }

    // The legs' own quantile: the middle value (of an even number, the upper of the middle two).
    /// <summary>The middle value; with an even count the mean of the two middle ones (not the upper one).</summary>
    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private static void PrintHalfLoad(double rate, LegResult plain, LegResult hub)
    {
        var (p, h) = (plain.Stats, hub.Stats);
        Console.WriteLine($"Half load: open loop at {rate:F0} events/s (50 % of the plain receiver's closed-loop end to end above; the median with --rounds), same agents and batches.");
        Console.WriteLine();
        Console.WriteLine("| metric | plain receiver | CallbackHub |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine($"| offered / accepted / end to end (events/s) | {N(p.Offered)} / {N(p.AcceptedEvents)} / {N(p.EndToEnd)} | {N(h.Offered)} / {N(h.AcceptedEvents)} / {N(h.EndToEnd)} |");
        Console.WriteLine($"| ack p50 / p99 (ms) | {Ms(p.AckMs, 0.5)} / {Ms(p.AckMs, 0.99)} | {Ms(h.AckMs, 0.5)} / {Ms(h.AckMs, 0.99)} |");
        Console.WriteLine($"| push → consumer p50 / p99 (ms) | {Ms(p.ToConsumerMs, 0.5)} / {Ms(p.ToConsumerMs, 0.99)} | {Ms(h.ToConsumerMs, 0.5)} / {Ms(h.ToConsumerMs, 0.99)} |");
        Console.WriteLine($"| lost / duplicated / order violations / content mismatches / unexpected | {Integrity(p)} | {Integrity(h)} |");
        Console.WriteLine($"| target process CPU (cores; µs per accepted event) | {Cpu(p)} | {Cpu(h)} |");
        Console.WriteLine();
        Console.WriteLine("| target | CallbackHub | bound (plain receiver) | |");
        Console.WriteLine("|---|---:|---:|---|");
        var plainAck99 = LegStats.Quantile(p.AckMs, 0.99);
        var hubToConsumer99 = LegStats.Quantile(h.ToConsumerMs, 0.99);
        var hubAck99 = LegStats.Quantile(h.AckMs, 0.99);
        Console.WriteLine($"| CallbackHub push → consumer p99 ≤ plain receiver ack p99 | {hubToConsumer99:F1} ms | {plainAck99:F1} ms | {Met(hubToConsumer99 <= plainAck99)} |");
        Console.WriteLine($"| CallbackHub ack p99 ≤ ½ plain receiver ack p99 | {hubAck99:F1} ms | {plainAck99 / 2:F1} ms | {Met(hubAck99 <= plainAck99 / 2)} |");
    }

    private static void Row(string name, string ceiling, string plain, string hub, string hubOverPlain, string hubOverCeiling) =>
        Console.WriteLine($"| {name} | {ceiling} | {plain} | {hub} | {hubOverPlain} | {hubOverCeiling} |");

    private static string N(double v) => v.ToString("F0", CultureInfo.InvariantCulture);

    private static string N2(double v) => v.ToString("F2", CultureInfo.InvariantCulture);

    private static string Ms(double[] sorted, double q) => sorted.Length == 0 ? "n/a" : LegStats.Quantile(sorted, q).ToString("F1", CultureInfo.InvariantCulture);

    private static string Ratio(double a, double b) => b > 0 && !double.IsNaN(a) ? $"{a / b:F2}×" : "–";

    private static string Integrity(LegStats s) => $"{s.Lost} / {s.Duplicates} / {s.OrderViolations} / {s.Mismatched} / {s.Unexpected} of {s.Acked}";

    private static string Cpu(LegStats s) => $"{s.CpuCores:F2}; {s.MicrosecondsPerEvent:F0} µs";

    private static string Cores(LegResult leg)
    {
        var (w, seconds) = (leg.Window, leg.Stats.Seconds);
        var rest = w.MachineBusyCores - ((w.HubCpu + w.PostgresCpu + w.RabbitMqCpu + w.ToolCpu).TotalSeconds / seconds);
        return $"{w.PostgresCpu.TotalSeconds / seconds:F2} / {w.RabbitMqCpu.TotalSeconds / seconds:F2} / {w.ToolCpu.TotalSeconds / seconds:F2} / {rest:F2}";
    }

    private static string Rss(LegResult leg) => string.Join(", ", leg.Window.Memory.Select(m => m.RssMax.ToString("F0", CultureInfo.InvariantCulture)));

    private static string Met(bool met) => met ? "**met**" : "**missed**";
}
