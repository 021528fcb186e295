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

    /// <summary>SHA-256 of the token before the current one, accepted until <see cref="PreviousTokenValidUntil"/>.</summary>
    public byte[]? PreviousTokenHash { get; set; }

    public DateTimeOffset? PreviousTokenValidUntil { get; set; }

    /// <summary>The gateway's sign-in <c>result</c> object (vdnid, workno, mediatype, loginTime…), as JSON.</summary>
    public string? GatewayResult { get; set; }

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
}
