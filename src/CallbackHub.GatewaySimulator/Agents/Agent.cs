using System.Threading.Channels;
using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>
/// Everything the gateway knows about one agent id across sessions. Session state changes only
/// while holding <see cref="Gate"/>; the push queue and counters have their own synchronisation.
/// </summary>
internal sealed class Agent(string id, int heartbeatTimesKept = 0)
{
    public const string HeartbeatTimeoutReason = "heartbeat-timeout";

    // UtcTicks of the last sign of life (sign-in or heartbeat) of the signed-in session, 0 when signed out:
    // lets the heartbeat monitor pass over live agents without taking their locks.
    private long lastSignOfLifeTicks;

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

    public HeartbeatObservations Heartbeats { get; } = new(heartbeatTimesKept);

    /// <summary>Poll-mode sessions collect their events here for GET agentevent.</summary>
    public Channel<QueuedEvent> PollEvents { get; private set; } = Channel.CreateUnbounded<QueuedEvent>();

    public void Begin(AgentSession session, DateTimeOffset now)
    {
        Current = Latest = session;
        LastHeartbeatAt = null;
        SignedOutAt = null;
        SignOutReason = null;
        Heartbeats.SignedIn(now);
        Volatile.Write(ref lastSignOfLifeTicks, now.UtcTicks);
        if (!session.IsPush)
        {
            PollEvents = Channel.CreateUnbounded<QueuedEvent>();
        }
    }

    /// <summary>An accepted heartbeat; returns the gap it closed.</summary>
    public TimeSpan KeepAlive(DateTimeOffset now)
    {
        LastHeartbeatAt = now;
        Volatile.Write(ref lastSignOfLifeTicks, now.UtcTicks);
        return Heartbeats.Heartbeat(now);
    }

    /// <summary>Without the lock: whether the agent may be signed in with no sign of life since <paramref name="cutoff"/>.</summary>
    public bool MayBeSilentSince(DateTimeOffset cutoff) =>
        Volatile.Read(ref lastSignOfLifeTicks) is var ticks && ticks != 0 && ticks <= cutoff.UtcTicks;

    /// <summary>Ends <paramref name="session"/> if it is still the signed-in one; false if it already ended.</summary>
    public bool End(AgentSession session, string reason, DateTimeOffset now, TimeSpan signOutDuration)
    {
        if (!ReferenceEquals(Current, session))
        {
            return false;
        }

        Current = null;
        Volatile.Write(ref lastSignOfLifeTicks, 0);
        SignedOutAt = now;
        SignOutReason = reason;
        SignOutCompletesAt = now + signOutDuration;
        Heartbeats.SignedOut(forLackOfHeartbeat: reason == HeartbeatTimeoutReason);
        return true;
    }
}
