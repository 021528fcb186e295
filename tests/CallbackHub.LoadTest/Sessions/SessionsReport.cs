using System.Diagnostics;
using CallbackHub.GatewaySimulator.Control;
using CallbackHub.GatewaySimulator.Play;

namespace CallbackHub.LoadTest.Sessions;

/// <summary>Turns a sessions run into the tool's markdown table, and a second one of ownership over time.</summary>
internal static class SessionsReport
{
    public sealed record Input(
        LoadOptions Options,
        string RunId,
        RosterSource Roster,
        long T0,
        long End,
        TimeSpan FaultAt,
        IReadOnlyList<HubRecord> Hubs,
        IReadOnlyList<OwnershipSample> Samples,
        IReadOnlyList<(long At, string What)> Timeline,
        GatewayObserver Observer,
        HeartbeatSummary Heartbeats,
        IReadOnlyList<AgentView> GatewayAgents,
        PlayStatus Play,
        (long Forwarded, long Failovers, long BadGateway) Balancer,
        MachineUsage Machine);

    public static void Print(Input run)
    {
        var o = run.Options;
        double T(long timestamp) => RunClock.Seconds(run.T0, timestamp);
        var rows = new List<(string, string)>();

        rows.Add(("run", $"{run.RunId}, sessions mode: {o.Agents:N0} agents ({o.FirstAgentId}–{o.FirstAgentId + o.Agents - 1}), {o.Instances} CallbackHub instance(s), "
            + $"gateway answers after {o.GatewayLatency.TotalMilliseconds:F0} ms, heartbeat tokens {(o.HeartbeatTokens == "Ignore" ? "ignored" : "adopted")} by the gateway, fault {Fault(o)}, "
            + $"{o.EventsPerSecond:F0} events/s played, {T(run.End):F0} s; roster {(run.Roster == RosterSource.File ? "in Roster__File" : "as Agents__N__… variables (fallback)")}; "
            + $"Gateway__MaxConcurrentCalls {(o.GatewayMaxConcurrentCalls is { } c ? c.ToString(System.Globalization.CultureInfo.InvariantCulture) : "not set (the service's default)")}"));
        rows.Add(("machine", $"{Environment.ProcessorCount} cores; load average before {run.Machine.LoadBefore}, after {run.Machine.LoadAfter}; "
            + $"all cores busy {run.Machine.BusyCores:F2} of {Environment.ProcessorCount} over the run"));
        rows.Add(("timeline (s after the first instance was started)", string.Join("; ", run.Timeline.Select(e => $"+{T(e.At):F1} {e.What}"))));

        var signedIn = run.Observer.AgentsSignedIn;
        var firstReady = run.Hubs.Count > 0 ? run.Hubs[0].Hub.ReadyAt : run.T0;
        rows.Add(("all agents signed in (simulator's view)", run.Observer.AllSignedInAt > 0
            ? $"**{T(run.Observer.AllSignedInAt):F1} s** after the first instance was started ({RunClock.Seconds(firstReady, run.Observer.AllSignedInAt):F1} s after it answered) "
                + $"= {o.Agents / Math.Max(0.001, RunClock.Seconds(firstReady, run.Observer.AllSignedInAt)):F0} sign-ins/s; {run.Heartbeats.SignedIn:N0} of {o.Agents:N0} signed in at the end"
            : $"**never**: {signedIn:N0} of {o.Agents:N0} ever signed in; {run.Heartbeats.SignedIn:N0} signed in at the end"));

        // Per agent: the longest gap, closed or still open at the end (an agent whose heartbeats stopped shows too); a
        // sign-out for want of heartbeat ends a gap without closing it, so it counts as a gap of the whole timeout.
        var timeout = run.Heartbeats.HeartbeatTimeoutSeconds;
        var perAgent = (run.Heartbeats.Details ?? [])
            .Select(a => Math.Max(Math.Max(a.MaxGapSeconds ?? 0, a.OpenGapSeconds ?? 0), a.TimeoutSignOuts > 0 ? timeout : 0)).Order().ToArray();
        string Gap(double seconds) => seconds >= timeout ? $"≥ {timeout:F0} (timed out)" : seconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        rows.Add(("per-agent longest heartbeat gap p50 / p99 / max", perAgent.Length == 0 ? "n/a" :
            $"{Gap(Rank(perAgent, 0.50))} / {Gap(Rank(perAgent, 0.99))} / **{Gap(perAgent[^1])} s** over {perAgent.Length:N0} agents "
            + $"(incl. the gap still open at the end; longest open {run.Heartbeats.MaxOpenGapSeconds ?? 0:F1} s); agents with a gap ≥ 60 s: {perAgent.Count(g => g >= 60):N0}, ≥ 90 s: {perAgent.Count(g => g >= 90):N0}, "
            + $"≥ {timeout:F0} s: {perAgent.Count(g => g >= timeout):N0}"));
        var gaps = run.Heartbeats.GapHistogram;
        long Gaps(int from, int to) => gaps.Where(b => b.FromSeconds >= from && b.FromSeconds < to).Sum(b => b.Count);
        rows.Add(("heartbeat gaps (all, by length): < 35 s / 35–60 / 60–90 / 90–120 / ≥ 120 s",
            $"{Gaps(0, 35):N0} / {Gaps(35, 60):N0} / {Gaps(60, 90):N0} / {Gaps(90, 120):N0} / {Gaps(120, int.MaxValue):N0} of {run.Heartbeats.Heartbeats:N0} heartbeats"
            + (run.Heartbeats.TimeoutSignOuts > 0 ? $", and {run.Heartbeats.TimeoutSignOuts:N0} gaps that ended in a sign-out for want of heartbeat" : "")));
        rows.Add(("agents signed out by the gateway for want of heartbeat (target 0)",
            $"**{run.Heartbeats.SignedOutByTimeout:N0}** ({run.Heartbeats.TimeoutSignOuts:N0} such sign-outs)"));

        var extra = run.Observer.ExtraSignIns();
        var faultStart = run.T0 + (long)(run.FaultAt.TotalSeconds * Stopwatch.Frequency);
        var timedOut = (run.Heartbeats.Details ?? []).Where(a => a.TimeoutSignOuts > 0).Select(a => a.AgentId).ToHashSet(StringComparer.Ordinal);
        var extraAgents = extra.Select(e => e.AgentId).Distinct().ToList();
        rows.Add(("sign-ins beyond each agent's first (target 0)", $"**{extra.Count:N0}** ({extraAgents.Count:N0} agents, {extraAgents.Count(timedOut.Contains):N0} of them signed out for want of heartbeat before"
            + (o.Fault == LoadTest.Fault.None ? ")" : $"; {extra.Count(e => e.At >= faultStart):N0} sign-ins at or after the fault's start)")
            + (extra.Count > 0 ? $"; first at +{T(extra[0].At):F1} s, last at +{T(extra[^1].At):F1} s" : "")));
        var notSignedIn = run.GatewayAgents.Where(a => !a.SignedIn).ToList();
        rows.Add(("agents not signed in at the gateway at the end", notSignedIn.Count == 0 ? "0" : $"{notSignedIn.Count:N0}: "
            + string.Join(", ", notSignedIn.GroupBy(a => a.SignOutReason ?? "never signed in").Select(g => $"{g.Key} {g.Count():N0}"))));
        rows.Add(("gateway calls (count × retcode)", string.Join("; ", run.Observer.Calls()
            .GroupBy(c => c.Key.Operation).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} " + string.Join(", ", g.OrderByDescending(c => c.Value).Select(c => $"{c.Value:N0} × {c.Key.Retcode}"))))));

        var lastJoin = run.Hubs.Count == 0 ? run.T0 : run.Hubs.Max(h => h.Hub.ReadyAt);
        var settled = run.Samples.FirstOrDefault(s => s.Error is null && s.At >= T(lastJoin) + 60);
        rows.Add(($"ownership a minute after the last instance joined (+{T(lastJoin):F0} s; GET /api/agents)", settled is null
            ? "no sample that late" : $"+{settled.At:F0} s, {settled.Sessions:N0} sessions: " + Balance(settled)));
        var last = run.Samples.LastOrDefault(s => s.Error is null);
        rows.Add(("ownership, last sample", last is null ? "no sample" : $"+{last.At:F0} s, {last.Sessions:N0} sessions: " + Balance(last)));

        var pushes = run.Observer.Pushes();
        var attempts = pushes.Values.Sum();
        var pushed = run.GatewayAgents.Sum(a => a.Pushed);
        rows.Add(("push attempts of the simulator by answer", attempts == 0 && pushed > 0
            ? $"**not counted** (the simulator made {pushed:N0}, but its push HttpClient is no longer named as SessionsRun expects)" : $"{attempts:N0}: "
            + string.Join(", ", pushes.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value:N0}"))
            + $" (through the balancer: {run.Balancer.Forwarded:N0} forwarded, {run.Balancer.Failovers:N0} refused connections retried on another instance, {run.Balancer.BadGateway:N0} answered 502)"));
        rows.Add(("pushes refused with 401" + (o.HeartbeatTokens == "Ignore" ? " (target 0)" : ""), $"**{pushes.GetValueOrDefault("401"):N0}** (simulator); "
            + "callbackhub_pushes_rejected_total, summed over the processes' last scrapes: "
            + Rejected(run.Hubs)));
        rows.Add(("events played / push batches acknowledged / failed attempts / still queued",
            $"{run.Play.EventsPlayed:N0} / {run.GatewayAgents.Sum(a => a.Acknowledged):N0} / {run.GatewayAgents.Sum(a => a.Failed):N0} / {run.GatewayAgents.Sum(a => a.Queued):N0}"));

        rows.Add(("CallbackHub CPU (cores: over its life / its last minute) and memory (RSS max → last; VmHWM)", string.Join("; ", run.Hubs.Select(h =>
        {
            var (life, lastMinute) = h.Cores();
            var stopped = h.StoppedAt is { } s ? $"→ +{T(s):F0} s {h.HowStopped}" : "→ end";
            return $"{h.InstanceId} pid {h.Hub.Pid} (+{T(h.Hub.StartedAt):F0} s {stopped}): {life:F2} / {(lastMinute is { } m ? m.ToString("F2", System.Globalization.CultureInfo.InvariantCulture) : "n/a")} cores, "
                + $"{h.RssMax:F0} → {h.RssLast:F0} MiB; peak {h.Peak:F0} MiB";
        }))));
        var hubCores = run.Hubs.Sum(h => h.CpuSamples[^1].Cpu.TotalSeconds) / RunClock.Seconds(run.T0, run.End);
        rows.Add(("where the cores went over the run (cores): CallbackHub / PostgreSQL / load tool (simulator, balancer) / rest of the machine",
            $"{hubCores:F2} / {run.Machine.PostgresCores:F2} / {run.Machine.ToolCores:F2} / {run.Machine.BusyCores - hubCores - run.Machine.PostgresCores - run.Machine.ToolCores:F2}"));

        Console.WriteLine("| metric | value |");
        Console.WriteLine("|---|---|");
        foreach (var (name, value) in rows)
        {
            Console.WriteLine($"| {name} | {value} |");
        }

        Console.WriteLine();
        Console.WriteLine($"Ownership over time (GET /api/agents every {o.SampleInterval.TotalSeconds:F0} s; deviation from an equal share of the sessions listed over the live instances):");
        Console.WriteLine();
        Console.WriteLine("| s | from | sessions by state | owners | max deviation | signed in at the gateway |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var s in run.Samples)
        {
            var states = string.Join(", ", s.States.OrderByDescending(x => x.Value).Select(x => $"{x.Key} {x.Value:N0}"));
            Console.WriteLine(s.Error is null
                ? $"| {s.At:F0} | {s.From} ({s.FetchSeconds:F1} s) | {states} | {string.Join(", ", s.Owners.OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key} {x.Value:N0}"))} | {MaxDeviation(s):P0} | {s.GatewaySignedIn:N0} |"
                : $"| {s.At:F0} | {s.From} | {s.Error} | | | {s.GatewaySignedIn:N0} |");
        }
    }

    private static string Fault(LoadOptions o) => o.Fault switch
    {
        LoadTest.Fault.SigKill => $"SIGKILL of instance 0 at +{(o.FaultAt ?? o.Duration / 2).TotalSeconds:F0} s, a replacement {o.RestartDelay.TotalSeconds:F0} s later",
        LoadTest.Fault.Rolling => $"rolling restart from +{(o.FaultAt ?? o.Duration / 2).TotalSeconds:F0} s (Sessions__SignOutOnShutdown=false)",
        _ => "none",
    };

    /// <summary>
    /// Each live instance's count against an equal share of the sessions listed (N ÷ live instances once every agent
    /// has a session: balance, not progress, which other rows show), and who else owns sessions.
    /// </summary>
    private static string Balance(OwnershipSample s)
    {
        var share = Share(s);
        var live = s.LiveInstances.Select(id => $"{id} {s.Owners.GetValueOrDefault(id):N0} ({(share == 0 ? 0 : (s.Owners.GetValueOrDefault(id) - share) / share):+0.0 %;-0.0 %;0.0 %})");
        var others = s.Owners.Where(x => !s.LiveInstances.Contains(x.Key)).Select(x => $"{x.Key} {x.Value:N0}").ToList();
        var deviation = MaxDeviation(s);
        return string.Join(", ", live) + (others.Count > 0 ? $"; not owned by a live instance: {string.Join(", ", others)}" : "")
            + $"; largest deviation from 1/{s.LiveInstances.Count}: **{deviation:P1}** ({(deviation <= 0.20 ? "within" : "outside")} ±20 %)";
    }

    private static double MaxDeviation(OwnershipSample s)
    {
        var share = Share(s);
        return s.LiveInstances.Count == 0 || share == 0 ? 1 : s.LiveInstances.Max(id => Math.Abs(s.Owners.GetValueOrDefault(id) - share) / share);
    }

    private static double Share(OwnershipSample s) => s.Sessions / (double)Math.Max(1, s.LiveInstances.Count);

    private static string Rejected(IReadOnlyList<HubRecord> hubs)
    {
        var total = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (reason, value) in hubs.SelectMany(h => h.Rejected))
        {
            total[reason] = total.GetValueOrDefault(reason) + value;
        }

        return total.Count == 0 ? "0" : $"{total.Values.Sum():N0} (" + string.Join(", ", total.Select(t => $"{t.Key} {t.Value:N0}")) + ")";
    }

    /// <summary>Nearest rank, as the simulator computes its percentiles.</summary>
    private static double Rank(double[] sorted, double percentile) => sorted[Math.Max(0, (int)Math.Ceiling(percentile * sorted.Length) - 1)];
}
