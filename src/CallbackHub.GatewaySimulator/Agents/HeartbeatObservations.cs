namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>
/// What the gateway saw of one agent's heartbeats since the simulator started or the observations were reset:
/// accepted heartbeats, their newest times, the longest gap between consecutive heartbeats of a session (or
/// between sign-in and the first heartbeat), the open gap of a signed-in agent, and sign-outs for lack of
/// heartbeat. Changes under the agent's lock.
/// </summary>
internal sealed class HeartbeatObservations(int timesKept)
{
    private readonly long[] times = new long[Math.Max(0, timesKept)];
    private int timesCount;
    private int timesNext;

    /// <summary>Whether the agent was signed in at some point of the observed period.</summary>
    public bool Observed { get; private set; }

    public long Heartbeats { get; private set; }

    /// <summary>The longest closed gap; null before the first one closed.</summary>
    public TimeSpan? MaxGap { get; private set; }

    /// <summary>The start of the open gap (sign-in or last heartbeat) while signed in; null when signed out.</summary>
    public DateTimeOffset? OpenSince { get; private set; }

    public int TimeoutSignOuts { get; private set; }

    /// <summary>The newest accepted heartbeat times, oldest first (at most Simulator:HeartbeatTimesKept).</summary>
    public IReadOnlyList<DateTimeOffset> Times
    {
        get
        {
            var result = new DateTimeOffset[timesCount];
            var start = (timesNext - timesCount + times.Length) % Math.Max(1, times.Length);
            for (var i = 0; i < timesCount; i++)
            {
                result[i] = DateTimeOffset.FromUnixTimeMilliseconds(times[(start + i) % times.Length]);
            }

            return result;
        }
    }

    public void SignedIn(DateTimeOffset now)
    {
        Observed = true;
        OpenSince = now;
    }

    /// <summary>Closes the open gap at an accepted heartbeat; the gap, for the simulator-wide histogram.</summary>
    public TimeSpan Heartbeat(DateTimeOffset now)
    {
        var gap = Close(now);
        OpenSince = now;
        Heartbeats++;
        if (times.Length > 0)
        {
            times[timesNext] = now.ToUnixTimeMilliseconds();
            timesNext = (timesNext + 1) % times.Length;
            timesCount = Math.Min(timesCount + 1, times.Length);
        }

        return gap;
    }

    /// <summary>A sign-out drops the open gap: only a heartbeat closes a gap (a timeout is counted instead).</summary>
    public void SignedOut(bool forLackOfHeartbeat)
    {
        if (forLackOfHeartbeat)
        {
            TimeoutSignOuts++;
        }

        OpenSince = null;
    }

    /// <summary>Forgets everything; a signed-in agent's next gap counts from <paramref name="now"/>.</summary>
    public void Reset(DateTimeOffset now, bool signedIn)
    {
        Observed = signedIn;
        Heartbeats = 0;
        MaxGap = null;
        OpenSince = signedIn ? now : null;
        TimeoutSignOuts = 0;
        timesCount = 0;
        timesNext = 0;
    }

    private TimeSpan Close(DateTimeOffset now)
    {
        var gap = OpenSince is { } since ? now - since : TimeSpan.Zero;
        if (MaxGap is not { } max || gap > max)
        {
            MaxGap = gap;
        }

        return gap;
    }
}
