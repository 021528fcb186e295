using CallbackHub.GatewaySimulator.Agents;

namespace CallbackHub.GatewaySimulator.Control;

/// <summary>
/// The heartbeats the gateway accepted since <paramref name="Since"/> (start, or the last reset), for load tests:
/// <paramref name="Agents"/> counts agents signed in at some point since then. A gap is the time between
/// consecutive accepted heartbeats of one session, or between sign-in and the first heartbeat; each agent's
/// longest gap gives <paramref name="MaxGapSeconds"/> and the nearest-rank percentiles
/// <paramref name="P50MaxGapSeconds"/> and <paramref name="P99MaxGapSeconds"/> over the
/// <paramref name="AgentsWithGaps"/> agents that have one. <paramref name="MaxOpenGapSeconds"/>: the longest time a
/// signed-in agent has now gone without a heartbeat (or since sign-in). <paramref name="SignedOutByTimeout"/>: agents
/// signed out at least once for lack of heartbeat; <paramref name="TimeoutSignOuts"/>: such sign-outs in all.
/// <paramref name="GapHistogram"/>: every gap, by whole seconds. <paramref name="Details"/>: per agent, when asked for.
/// </summary>
public sealed record HeartbeatSummary(
    DateTimeOffset At,
    DateTimeOffset Since,
    double HeartbeatTimeoutSeconds,
    int Agents,
    int SignedIn,
    long Heartbeats,
    int AgentsWithGaps,
    double? MaxGapSeconds,
    double? P50MaxGapSeconds,
    double? P99MaxGapSeconds,
    double? MaxOpenGapSeconds,
    int SignedOutByTimeout,
    long TimeoutSignOuts,
    IReadOnlyList<GapBucket> GapHistogram,
    IReadOnlyList<AgentHeartbeats>? Details);

/// <summary>
/// One agent's heartbeats since the observations began: <paramref name="HeartbeatTimes"/> holds the newest
/// accepted ones (Simulator:HeartbeatTimesKept), oldest first; <paramref name="OpenGapSeconds"/> is null when signed out.
/// </summary>
public sealed record AgentHeartbeats(
    string AgentId,
    bool SignedIn,
    long Heartbeats,
    double? MaxGapSeconds,
    double? OpenGapSeconds,
    DateTimeOffset? LastHeartbeatAt,
    int TimeoutSignOuts,
    IReadOnlyList<DateTimeOffset> HeartbeatTimes)
{
    internal static AgentHeartbeats Of(Agent agent, DateTimeOffset now)
    {
        lock (agent.Gate)
        {
            var observed = agent.Heartbeats;
            return new AgentHeartbeats(
                agent.Id,
                SignedIn: agent.Current is not null,
                observed.Heartbeats,
                observed.MaxGap?.TotalSeconds,
                observed.OpenSince is { } since ? (now - since).TotalSeconds : null,
                agent.LastHeartbeatAt,
                observed.TimeoutSignOuts,
                observed.Times);
        }
    }

    internal static HeartbeatSummary Summarize(
        IEnumerable<Agent> agents, DateTimeOffset now, DateTimeOffset since, TimeSpan timeout, IReadOnlyList<GapBucket> gaps, bool details)
    {
        var all = new List<AgentHeartbeats>();
        foreach (var agent in agents)
        {
            bool observed;
            lock (agent.Gate)
            {
                observed = agent.Heartbeats.Observed;
            }

            if (observed)
            {
                all.Add(Of(agent, now));
            }
        }

        var maxGaps = all.Where(a => a.MaxGapSeconds is not null).Select(a => a.MaxGapSeconds!.Value).Order().ToArray();
        var openGaps = all.Where(a => a.OpenGapSeconds is not null).Select(a => a.OpenGapSeconds!.Value).ToList();
        return new HeartbeatSummary(
            now,
            since,
            timeout.TotalSeconds,
            Agents: all.Count,
            SignedIn: all.Count(a => a.SignedIn),
            Heartbeats: all.Sum(a => a.Heartbeats),
            AgentsWithGaps: maxGaps.Length,
            MaxGapSeconds: maxGaps.Length > 0 ? maxGaps[^1] : null,
            P50MaxGapSeconds: NearestRank(maxGaps, 0.50),
            P99MaxGapSeconds: NearestRank(maxGaps, 0.99),
            MaxOpenGapSeconds: openGaps.Count > 0 ? openGaps.Max() : null,
            SignedOutByTimeout: all.Count(a => a.TimeoutSignOuts > 0),
            TimeoutSignOuts: all.Sum(a => (long)a.TimeoutSignOuts),
            gaps,
            details ? all : null);
    }

    private static double? NearestRank(double[] sorted, double percentile) =>
        sorted.Length == 0 ? null : sorted[Math.Max(0, (int)Math.Ceiling(percentile * sorted.Length) - 1)];
}
