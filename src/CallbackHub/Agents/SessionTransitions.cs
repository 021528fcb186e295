using CallbackHub.Gateway;
using CallbackHub.Storage;

namespace CallbackHub.Agents;

/// <summary>
/// Every change of a session's state, as a function of the row and what happened — no I/O, so each is unit-tested
/// on its own. The callers (<see cref="SignIns"/>, <see cref="SessionKeeping"/>) read, call one of these, and save.
/// </summary>
internal static class SessionTransitions
{
    /// <summary>The longest Guid kept (the column's size); the gateway's are about 50 characters.</summary>
    public const int MaxGuidLength = 256;

    /// <summary>
    /// A sign-in starts with a new token. The token of the session being replaced stays good for the overlap (its last
    /// pushes may be in flight); the Guid is not usable until the gateway answers.
    /// </summary>
    public static void SigningIn(AgentSession s, byte[] tokenHash, DateTimeOffset now, TimeSpan overlap)
    {
        s.PreviousTokenHash = s.TokenHash;
        s.PreviousTokenValidUntil = s.TokenHash is null ? null : now + overlap;
        s.TokenHash = tokenHash;
        s.TokenSeenAt = null;
        s.State = AgentSessionState.SigningIn;
        s.Guid = null;
        s.GatewayCookies = null;
        s.GatewayResult = null;
        s.SignInStartedAt = now;
        s.SignedInAt = null;
        s.SignedOutAt = null;
        s.LastError = null;
    }

    public static void SignedIn(AgentSession s, GatewayAnswer answer, string instanceId, DateTimeOffset now)
    {
        s.State = AgentSessionState.Active;
        s.Guid = answer.Guid is { Length: <= MaxGuidLength } guid ? guid : null;
        s.GatewayCookies = answer.Cookies;
        s.GatewayResult = answer.ResultJson;
        s.SignedInAt = now;
        s.LastGuidChangeAt = now;
        s.LastTokenRotationAt = now;
        s.LastHeartbeatAt = null;
        s.NextSignInAt = null;
        s.SignInFailures = 0;
        // The instance that signed the agent in keeps it until its lease is renewed elsewhere or lapses.
        s.OwnerInstance = instanceId;
        s.LastError = answer.Guid switch
        {
            null => "The gateway's sign-in answer carried no Guid header.",
            { Length: > MaxGuidLength } => $"The gateway's sign-in answer carried a Guid of {answer.Guid.Length} characters (at most {MaxGuidLength} are kept).",
            _ => null,
        };
    }

    /// <summary>
    /// The gateway still has the session we hold (100-002 on an automatic sign-in): go on with its Guid and the token
    /// it was given, never clearing what it uses. The sign-in's answer counts as a heartbeat answered one interval ago,
    /// so the next one goes at once and tells whether the session is really alive.
    /// </summary>
    public static void Resume(AgentSession s, SignInClaim held, string instanceId, DateTimeOffset now, TimeSpan heartbeatInterval)
    {
        var unused = s.TokenHash;
        s.State = AgentSessionState.Active;
        s.OwnerInstance = instanceId;
        s.Guid = held.HeldGuid;
        s.GatewayCookies = held.HeldCookies;
        s.GatewayResult = held.HeldResult;
        s.TokenHash = held.HeldTokenHash;
        s.TokenSeenAt = held.HeldTokenSeenAt;
        // The token made for this sign-in never reached a session: refused from now on.
        s.PreviousTokenHash = unused;
        s.PreviousTokenValidUntil = now;
        s.SignedInAt = held.HeldSignedInAt ?? now;
        s.LastHeartbeatAt = now - heartbeatInterval;
        s.NextSignInAt = null;
        s.SignInFailures = 0;
        s.LastError = "The gateway still had the agent signed in; the session was resumed.";
    }

    /// <summary>
    /// Lost, or a sign-in that failed for a reason that may pass: the token is still accepted (the gateway may have
    /// the agent signed in after all) and the keeper signs in again, after a backoff when this was a failed try.
    /// </summary>
    public static void Unsuccessful(AgentSession s, AgentSessionState state, string reason, SessionKeepingOptions o, DateTimeOffset now)
    {
        s.State = state;
        s.LastError = reason;
        s.SignInFailures++;
        s.NextSignInAt = now + SessionRules.Backoff(o, s.SignInFailures);
    }

    /// <summary>The gateway no longer has the session; its token is still accepted, the keeper signs in again at once.</summary>
    public static void Lost(AgentSession s, string reason, DateTimeOffset now)
    {
        s.State = AgentSessionState.Lost;
        s.LastError = reason;
        s.SignInFailures = 0;
        s.NextSignInAt = now;
    }

    /// <summary>The gateway said no for good: it pushes nothing for this sign-in, so nothing needs its token.</summary>
    public static void Refused(AgentSession s, string reason)
    {
        ClearSession(s);
        s.State = AgentSessionState.Failed;
        s.LastError = reason;
    }

    /// <param name="grace">How long the ended session's token is still accepted: the gateway's last event comes after.</param>
    public static void SignedOut(AgentSession s, string? reason, DateTimeOffset now, TimeSpan grace)
    {
        var endedToken = s.TokenHash;
        ClearSession(s);
        s.State = AgentSessionState.SignedOut;
        s.SignedOutAt = now;
        s.LastError = reason;
        if (grace > TimeSpan.Zero && endedToken is not null)
        {
            s.PreviousTokenHash = endedToken;
            s.PreviousTokenValidUntil = now + grace;
        }
    }

    /// <summary>
    /// A new token, stored (as a hash) before it is sent, so that the gateway's very next push is accepted by every
    /// instance. The current one becomes the previous one, good until a push shows the gateway uses the new one.
    /// </summary>
    public static void Rotate(AgentSession s, byte[] newTokenHash, DateTimeOffset now)
    {
        s.PreviousTokenHash = s.TokenHash;
        s.PreviousTokenValidUntil = null;
        s.TokenHash = newTokenHash;
        s.TokenSeenAt = null;
        s.LastTokenRotationAt = now;
    }

    public static void HeartbeatAnswered(AgentSession s, GatewayAnswer answer, DateTimeOffset now)
    {
        s.LastHeartbeatAt = now;
        s.LastError = null;
        // Dynamic authentication: the gateway hands out the next Guid on the heartbeat; always adopt it.
        if (answer.Guid is { Length: > MaxGuidLength } tooLong)
        {
            s.LastError = $"The gateway answered the heartbeat with a Guid of {tooLong.Length} characters (at most {MaxGuidLength} are kept); the one held is used on.";
        }
        else if (answer.Guid is { Length: > 0 } guid && guid != s.Guid)
        {
            s.Guid = guid;
            s.LastGuidChangeAt = now;
        }

        if (answer.Cookies is { Length: > 0 } cookies)
        {
            s.GatewayCookies = cookies;
        }
    }

    private static void ClearSession(AgentSession s)
    {
        s.TokenHash = null;
        s.TokenSeenAt = null;
        s.PreviousTokenHash = null;
        s.PreviousTokenValidUntil = null;
        s.Guid = null;
        s.GatewayCookies = null;
        s.OwnerInstance = null;
        s.LeaseExpiresAt = null;
        s.NextSignInAt = null;
        s.SignedOutAt = null;
    }
}
