using CallbackHub.GatewaySimulator.Agents;
using CallbackHub.GatewaySimulator.Control;
using CallbackHub.GatewaySimulator.Play;
using CallbackHub.GatewaySimulator.Pushing;
using CallbackHub.GatewaySimulator.Recording;

namespace CallbackHub.GatewaySimulator;

/// <summary>
/// The simulator's public face for in-process use (get it from <c>app.Services</c>); the control API
/// under /simulator/ offers the same operations over HTTP.
/// </summary>
public sealed class GatewaySimulatorState
{
    private readonly AgentDirectory agents;
    private readonly AgentLifecycle lifecycle;
    private readonly PushDelivery delivery;
    private readonly AgentDayPlayer player;
    private readonly Switchboard switchboard;
    private readonly HeartbeatGaps gaps;
    private readonly TimeProvider time;
    private readonly BoundedLog<RecordedRequest> requests;
    private readonly BoundedLog<PushAttempt> pushes;

    internal GatewaySimulatorState(
        AgentDirectory agents,
        AgentLifecycle lifecycle,
        PushDelivery delivery,
        AgentDayPlayer player,
        Switchboard switchboard,
        HeartbeatGaps gaps,
        TimeProvider time,
        BoundedLog<RecordedRequest> requests,
        BoundedLog<PushAttempt> pushes)
    {
        this.agents = agents;
        this.lifecycle = lifecycle;
        this.delivery = delivery;
        this.player = player;
        this.switchboard = switchboard;
        this.gaps = gaps;
        this.time = time;
        this.requests = requests;
        this.pushes = pushes;
    }

    public IReadOnlyList<AgentView> GetAgents() => [.. agents.All.Select(View)];

    public AgentView? GetAgent(string agentId) => agents.Find(agentId) is { } agent ? View(agent) : null;

    /// <summary>Gateway API requests received, oldest first; only those naming <paramref name="agentId"/> if given.</summary>
    public IReadOnlyList<RecordedRequest> GetRequests(string? agentId = null) =>
        requests.Snapshot(agentId is null ? null : r => r.AgentId == agentId);

    /// <summary>Push attempts (queued and push-once), oldest first.</summary>
    public IReadOnlyList<PushAttempt> GetPushes(string? agentId = null) =>
        pushes.Snapshot(agentId is null ? null : p => p.AgentId == agentId);

    /// <summary>Queues events for normal delivery (batching, retries) to the agent's current or last push session.</summary>
    public QueueOutcome Enqueue(string agentId, IEnumerable<SimulatedEvent> events)
    {
        if (agents.Find(agentId) is not { } agent)
        {
            return QueueOutcome.UnknownAgent;
        }

        lock (agent.Gate)
        {
            if (agent.Latest is not { IsPush: true } session)
            {
                return QueueOutcome.NoPushSession;
            }

            delivery.Enqueue(agent, session, events);
            return QueueOutcome.Queued;
        }
    }

    /// <summary>
    /// One synchronous push to the agent's current or last callback, bypassing the queue, with an optional
    /// wrong token or Guid. Null when the agent has no push session.
    /// </summary>
    public async Task<PushResponse?> PushOnceAsync(
        string agentId,
        IEnumerable<SimulatedEvent> events,
        string? serviceToken = null,
        string? guid = null,
        CancellationToken cancellationToken = default)
    {
        var session = agents.Find(agentId) is { } agent ? LatestPushSession(agent) : null;
        if (session is null)
        {
            return null;
        }

        return await delivery.PushOnceAsync(session, events, serviceToken, guid, cancellationToken);
    }

    /// <summary>
    /// Signs the agent out as the gateway would on its own; false if not signed in. AgentOther_ShutdownService is
    /// pushed as the PushShutdownOnSignOut switch says, unless <paramref name="pushShutdown"/> decides for this once.
    /// </summary>
    public bool SignOut(string agentId, string reason = "simulator", bool? pushShutdown = null) =>
        lifecycle.ForceSignOut(agentId, reason, pushShutdown);

    /// <summary>Rotates the agent's Guid now; the previous one stays valid until it expires. Null if not signed in.</summary>
    public string? RotateGuid(string agentId) => lifecycle.RotateGuid(agentId);

    /// <summary>The behaviours that can change at run time (see <see cref="SimulatorSwitches"/>).</summary>
    public SimulatorSwitches Switches => switchboard.Current;

    /// <summary>Changes the switches that <paramref name="update"/> names; throws ArgumentException (changing nothing) on a bad value.</summary>
    public SimulatorSwitches UpdateSwitches(SwitchesUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var problems = switchboard.Update(update);
        return problems.Count == 0 ? switchboard.Current : throw new ArgumentException(string.Join("; ", problems));
    }

    /// <summary>Heartbeat observations of every agent signed in since the start or the last reset; per agent if <paramref name="details"/>.</summary>
    public HeartbeatSummary GetHeartbeats(bool details = false) =>
        AgentHeartbeats.Summarize(agents.All, time.GetUtcNow(), gaps.Since, switchboard.Current.HeartbeatTimeout, gaps.Snapshot(), details);

    /// <summary>One agent's heartbeat observations; null for an agent the simulator never saw.</summary>
    public AgentHeartbeats? GetHeartbeats(string agentId) =>
        agents.Find(agentId) is { } agent ? AgentHeartbeats.Of(agent, time.GetUtcNow()) : null;

    /// <summary>Starts the heartbeat observations afresh (e.g. after a warm-up); sessions stay as they are.</summary>
    public void ResetHeartbeats()
    {
        var now = time.GetUtcNow();
        gaps.Reset(now);
        foreach (var agent in agents.Unordered)
        {
            lock (agent.Gate)
            {
                agent.Heartbeats.Reset(now, signedIn: agent.Current is not null);
            }
        }
    }

    public PlayStatus PlayStatus => player.Status;

    public Task<PlayStatus> StartPlayAsync(PlaySettings settings) => player.StartAsync(settings);

    public Task<PlayStatus> StopPlayAsync() => player.StopAsync();

    /// <summary>Forgets recorded requests and push attempts; agents and queues stay as they are.</summary>
    public void Reset()
    {
        requests.Clear();
        pushes.Clear();
    }

    private static AgentSession? LatestPushSession(Agent agent)
    {
        lock (agent.Gate)
        {
            return agent.Latest is { IsPush: true } session ? session : null;
        }
    }

    private static AgentView View(Agent agent)
    {
        lock (agent.Gate)
        {
            var session = agent.Latest;
            return new AgentView(
                agent.Id,
                SignedIn: agent.Current is not null,
                Mode: session is null ? null : session.IsPush ? "push" : "poll",
                Guid: session?.Guids.Current,
                CallBackUri: session?.CallBackUri,
                ServiceToken: session?.ServiceToken,
                HeartbeatServiceToken: session?.LastHeartbeatServiceToken,
                PhoneNumber: session?.PhoneNumber,
                Status: session?.Status,
                Skills: session?.Skills,
                SignedInAt: session?.SignedInAt,
                LastHeartbeatAt: agent.LastHeartbeatAt,
                SignedOutAt: agent.SignedOutAt,
                SignOutReason: agent.SignOutReason,
                Queued: agent.Queue.Count,
                Pushed: agent.Pushes.Pushed,
                Acknowledged: agent.Pushes.Acknowledged,
                Failed: agent.Pushes.Failed);
        }
    }
}
