namespace CallbackHub.Agents;

/// <summary>How sessions are kept alive (docs/gateway-protocol.md §2–5). Defaults follow the gateway's own timings.</summary>
internal sealed class SessionKeepingOptions
{
    public const string Section = "Sessions";

    /// <summary>The gateway signs an agent out after 2 minutes without one; it asks for one every 30 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the service token is replaced (sent on a heartbeat); the gateway recommends every minute. 0: never.</summary>
    public TimeSpan TokenRotationInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long the previous token is still accepted once a push showed the gateway uses the new one: a batch that
    /// failed is re-sent for 120 s, every 10 s, perhaps with the token it was first sent with, and the default covers
    /// that window (docs/gateway-protocol.md §6).
    /// </summary>
    public TimeSpan TokenOverlap { get; set; } = TimeSpan.FromSeconds(150);

    /// <summary>The gateway's window: no heartbeat answered for this long means the session is gone.</summary>
    public TimeSpan GatewaySessionTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long an instance owns an agent's heartbeats without renewing; another takes over after it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the keeper looks at its sessions (renews leases, sends what is due).</summary>
    public TimeSpan KeeperInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First and longest pause before signing a lost session in again (doubling in between).</summary>
    public TimeSpan ReSignInDelay { get; set; } = TimeSpan.FromSeconds(5);

    public TimeSpan MaxReSignInDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Answer "already signed in" (100-002) with a forced sign-in, taking the agent from wherever it is.</summary>
    public bool ForceLogin { get; set; }

    /// <summary>
    /// How long the token of a session we signed out is still accepted: the gateway's last event,
    /// <c>AgentOther_ShutdownService</c>, comes after the logout answer with that token (docs/gateway-protocol.md §5),
    /// and may be retried for the gateway's 2 minutes.
    /// </summary>
    public TimeSpan SignOutGrace { get; set; } = TimeSpan.FromSeconds(150);

    /// <summary>Sign this instance's agents out on shutdown; off lets another instance keep them.</summary>
    public bool SignOutOnShutdown { get; set; } = true;

    /// <summary>Names this instance in leases and the API; unique per running instance.</summary>
    public string InstanceId { get; set; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>
    /// Session reads and writes (heartbeats, sign-ins, the API) running at once, at most. The keeper's rounds would
    /// otherwise take the whole connection pool every few seconds (a hundred heartbeats answered together), and pushes,
    /// which need a connection to be committed, would wait behind them.
    /// </summary>
    public int MaxConcurrentDatabaseCalls { get; set; } = 8;

    /// <summary>Run the keeper at all (tests drive it by hand).</summary>
    public bool KeeperEnabled { get; set; } = true;

    public static IEnumerable<string> Validate(SessionKeepingOptions o)
    {
        if (o.HeartbeatInterval <= TimeSpan.Zero || o.HeartbeatInterval >= o.GatewaySessionTimeout)
        {
            yield return "Sessions__HeartbeatInterval must be positive and shorter than Sessions__GatewaySessionTimeout (the gateway's 2 minutes).";
        }

        if (o.TokenRotationInterval < TimeSpan.Zero || o.TokenOverlap < TimeSpan.Zero)
        {
            yield return "Sessions__TokenRotationInterval (0 turns rotation off) and Sessions__TokenOverlap must not be negative.";
        }

        if (o.SignOutGrace < TimeSpan.Zero)
        {
            yield return "Sessions__SignOutGrace must not be negative.";
        }

        if (o.KeeperInterval <= TimeSpan.Zero || o.KeeperInterval > o.HeartbeatInterval)
        {
            yield return "Sessions__KeeperInterval must be positive and no longer than Sessions__HeartbeatInterval.";
        }

        if (o.LeaseDuration < 2 * o.KeeperInterval)
        {
            yield return "Sessions__LeaseDuration must be at least twice Sessions__KeeperInterval, or leases lapse between renewals.";
        }

        if (o.ReSignInDelay <= TimeSpan.Zero || o.MaxReSignInDelay < o.ReSignInDelay)
        {
            yield return "Sessions__ReSignInDelay must be positive and no longer than Sessions__MaxReSignInDelay.";
        }

        if (o.MaxConcurrentDatabaseCalls is < 1 or > 1000)
        {
            yield return "Sessions__MaxConcurrentDatabaseCalls must be between 1 and 1000.";
        }

        if (string.IsNullOrWhiteSpace(o.InstanceId) || o.InstanceId.Length > 200)
        {
            yield return "Sessions__InstanceId must be 1 to 200 characters.";
        }
    }
}
