namespace CallbackHub.Agents;

/// <summary>How sessions are kept alive (docs/gateway-protocol.md §2–5). Defaults follow the gateway's own timings.</summary>
internal sealed class SessionKeepingOptions
{
    public const string Section = "Sessions";

    /// <summary>The gateway signs an agent out after 2 minutes without one; it asks for one every 30 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the service token is replaced (sent on a heartbeat); the gateway recommends every minute.</summary>
    public TimeSpan TokenRotationInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the previous token is still accepted after a rotation, for pushes already in flight.</summary>
    public TimeSpan TokenOverlap { get; set; } = TimeSpan.FromSeconds(60);

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

    /// <summary>Sign this instance's agents out on shutdown; off lets another instance keep them.</summary>
    public bool SignOutOnShutdown { get; set; } = true;

    /// <summary>Names this instance in leases and the API; unique per running instance.</summary>
    public string InstanceId { get; set; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Run the keeper at all (tests drive it by hand).</summary>
    public bool KeeperEnabled { get; set; } = true;

    /// <summary>
    /// Whether the keeper has something to do for a session now: a heartbeat (or noticing the gateway's silence),
    /// a sign-in of a lost session, or giving up on a sign-in whose instance died. The one rule for both the
    /// keeper's lease query and <see cref="AgentSessions.KeepAsync"/>.
    /// </summary>
    /// <param name="lastAnswer">The last answered heartbeat, or the sign-in when there was none yet.</param>
    public bool IsDue(
        Storage.AgentSessionState state, DateTimeOffset? lastAnswer, DateTimeOffset? nextSignInAt, DateTimeOffset? signInStartedAt, DateTimeOffset now) =>
        state switch
        {
            Storage.AgentSessionState.Active => lastAnswer is null || now - lastAnswer >= HeartbeatInterval,
            Storage.AgentSessionState.Lost => nextSignInAt is null || nextSignInAt <= now,
            // A sign-in never takes this long: the instance making it died.
            Storage.AgentSessionState.SigningIn => signInStartedAt is null || now - signInStartedAt >= GatewaySessionTimeout,
            _ => false,
        };

    public static IEnumerable<string> Validate(SessionKeepingOptions o)
    {
        if (o.HeartbeatInterval <= TimeSpan.Zero || o.HeartbeatInterval >= o.GatewaySessionTimeout)
        {
            yield return "Sessions:HeartbeatInterval must be positive and shorter than Sessions:GatewaySessionTimeout (the gateway's 2 minutes).";
        }

        if (o.TokenRotationInterval <= TimeSpan.Zero || o.TokenOverlap < TimeSpan.Zero)
        {
            yield return "Sessions:TokenRotationInterval must be positive and Sessions:TokenOverlap not negative.";
        }

        if (o.KeeperInterval <= TimeSpan.Zero || o.KeeperInterval > o.HeartbeatInterval)
        {
            yield return "Sessions:KeeperInterval must be positive and no longer than Sessions:HeartbeatInterval.";
        }

        if (o.LeaseDuration < 2 * o.KeeperInterval)
        {
            yield return "Sessions:LeaseDuration must be at least twice Sessions:KeeperInterval, or leases lapse between renewals.";
        }

        if (o.ReSignInDelay <= TimeSpan.Zero || o.MaxReSignInDelay < o.ReSignInDelay)
        {
            yield return "Sessions:ReSignInDelay must be positive and no longer than Sessions:MaxReSignInDelay.";
        }

        if (string.IsNullOrWhiteSpace(o.InstanceId) || o.InstanceId.Length > 200)
        {
            yield return "Sessions:InstanceId must be 1 to 200 characters.";
        }
    }
}
