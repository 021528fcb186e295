namespace CallbackHub.Storage;

/// <summary>An agent's push-mode session with the gateway. The service token is never stored in clear.</summary>
internal sealed class AgentSession
{
    public int AgentId { get; set; }
    public AgentSessionState State { get; set; }

    /// <summary>The gateway's session Guid, sent on every call after sign-in.</summary>
    public string? Guid { get; set; }

    /// <summary>SHA-256 of the current service token.</summary>
    public byte[]? TokenHash { get; set; }

    /// <summary>When a push first carried the current token (by any instance): proof the gateway uses it.</summary>
    public DateTimeOffset? TokenSeenAt { get; set; }

    /// <summary>
    /// SHA-256 of the token before the current one, accepted until <see cref="PreviousTokenValidUntil"/> — or, while
    /// that is null, until a push carries the current token (the gateway may never adopt a heartbeat's token).
    /// </summary>
    public byte[]? PreviousTokenHash { get; set; }

    public DateTimeOffset? PreviousTokenValidUntil { get; set; }

    /// <summary>Raised by every change of the row; a write made from an older read fails instead of overwriting it.</summary>
    public int Version { get; set; }

    /// <summary>The gateway's sign-in <c>result</c> object (vdnid, workno, mediatype, loginTime…), as JSON.</summary>
    public string? GatewayResult { get; set; }

    /// <summary>The load balancer's cookies in front of the gateway, resent for stickiness (<c>a=1; b=2</c>).</summary>
    public string? GatewayCookies { get; set; }

    /// <summary>The instance that heartbeats and rotates this session, while its lease lasts.</summary>
    public string? OwnerInstance { get; set; }

    public DateTimeOffset? LeaseExpiresAt { get; set; }
    public DateTimeOffset? LastHeartbeatAt { get; set; }
    public DateTimeOffset? LastGuidChangeAt { get; set; }
    /// <summary>When the current token was issued (at sign-in, or sent on a heartbeat).</summary>
    public DateTimeOffset? LastTokenRotationAt { get; set; }

    /// <summary>When a lost or failed session may next be signed in again (backoff), and how many tries failed so far.</summary>
    public DateTimeOffset? NextSignInAt { get; set; }

    public int SignInFailures { get; set; }

    public DateTimeOffset? SignInStartedAt { get; set; }
    public DateTimeOffset? SignedInAt { get; set; }
    public DateTimeOffset? SignedOutAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public string? LastError { get; set; }
}

internal enum AgentSessionState
{
    SigningIn,
    Active,
    Lost,
    SignedOut,

    /// <summary>A sign-in that never succeeded: refused (not retried), or the gateway unreachable (retried with backoff).</summary>
    Failed,

    /// <summary>Our own sign-out is under way: the gateway's sign-out event that follows is expected, not a loss.</summary>
    SigningOut,
}
