using System.Threading.Channels;
using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>
/// Everything the gateway knows about one agent id across sessions. Session state changes only
/// while holding <see cref="Gate"/>; the push queue and counters have their own synchronisation.
/// </summary>
internal sealed class Agent(string id) : IDisposable
{
    private ITimer? heartbeatTimer;

    public string Id { get; } = id;

    public Lock Gate { get; } = new();

    /// <summary>The signed-in session, or null.</summary>
    public AgentSession? Current { get; private set; }

    /// <summary>The signed-in session, or the last one that ended (for push-once and the control API).</summary>
    public AgentSession? Latest { get; private set; }

    public DateTimeOffset? LastHeartbeatAt { get; private set; }

    public DateTimeOffset? SignedOutAt { get; private set; }

    public string? SignOutReason { get; private set; }

    /// <summary>Until then a new sign-in answers 100-021 (see SimulatorOptions.SignOutDuration).</summary>
    public DateTimeOffset SignOutCompletesAt { get; private set; }

    public PushQueue Queue { get; } = new();

    public PushCounters Pushes { get; } = new();

    /// <summary>Poll-mode sessions collect their events here for GET agentevent.</summary>
    public Channel<QueuedEvent> PollEvents { get; private set; } = Channel.CreateUnbounded<QueuedEvent>();

    public void Begin(AgentSession session, ITimer heartbeat)
    {
        heartbeatTimer?.Dispose();
        heartbeatTimer = heartbeat;
        Current = Latest = session;
        LastHeartbeatAt = null;
        SignedOutAt = null;
        SignOutReason = null;
        if (!session.IsPush)
        {
            PollEvents = Channel.CreateUnbounded<QueuedEvent>();
        }
    }

    public void KeepAlive(DateTimeOffset now, TimeSpan timeout)
    {
        LastHeartbeatAt = now;
        heartbeatTimer?.Change(timeout, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Ends <paramref name="session"/> if it is still the signed-in one; false if it already ended.</summary>
    public bool End(AgentSession session, string reason, DateTimeOffset now, TimeSpan signOutDuration)
    {
        if (!ReferenceEquals(Current, session))
        {
            return false;
        }

        heartbeatTimer?.Dispose();
        heartbeatTimer = null;
        Current = null;
        SignedOutAt = now;
        SignOutReason = reason;
        SignOutCompletesAt = now + signOutDuration;
        return true;
    }

    public void Dispose() => heartbeatTimer?.Dispose();
}
