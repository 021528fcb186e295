using CallbackHub.Gateway;
using CallbackHub.Storage;

namespace CallbackHub.Agents;

/// <summary>What to do after the gateway answered a sign-in.</summary>
internal enum SignInVerdict
{
    /// <summary>Signed in: the session is active with the new Guid and token.</summary>
    Active,

    /// <summary>
    /// <c>100-002</c> on an automatic sign-in of a session we still hold a Guid for: the gateway kept it, so we resume
    /// it with the Guid and token it knows (a heartbeat tells soon whether it is really alive).
    /// </summary>
    Resume,

    /// <summary>Try again later (backoff); the session keeps its state, lost or failed, and its tokens stay accepted.</summary>
    RetryLater,

    /// <summary>Retrying cannot help: the sign-in failed for good (reported in lastError), credentials are forgotten.</summary>
    GiveUp,
}

/// <summary>
/// The rules that move a session between states, apart from any I/O so that unit tests cover them: when something
/// is due, what a retcode means for the session, when a token may be rotated.
/// </summary>
internal static class SessionRules
{
    /// <summary>
    /// Whether the keeper has something to do for a session now: a heartbeat (or noticing the gateway's silence), a
    /// sign-in of a lost or failed session, or giving up on a sign-in or sign-out whose instance died.
    /// </summary>
    /// <param name="lastAnswer">The last answered heartbeat, or the sign-in when there was none yet.</param>
    /// <param name="updatedAt">When the session last changed: for a sign-in or sign-out under way, when it started.</param>
    public static bool IsDue(
        SessionKeepingOptions o, AgentSessionState state, DateTimeOffset? lastAnswer, DateTimeOffset? nextSignInAt, DateTimeOffset updatedAt, DateTimeOffset now) =>
        state switch
        {
            AgentSessionState.Active => lastAnswer is null || now - lastAnswer >= o.HeartbeatInterval,
            AgentSessionState.Lost => nextSignInAt is null || nextSignInAt <= now,
            // Only a sign-in that may succeed when tried again has a next time.
            AgentSessionState.Failed => nextSignInAt is not null && nextSignInAt <= now,
            // A sign-in or sign-out never takes this long: the instance making it died.
            AgentSessionState.SigningIn or AgentSessionState.SigningOut => now - updatedAt >= o.GatewaySessionTimeout,
            _ => false,
        };

    /// <summary>The gateway signs an agent out after this long without an answered heartbeat.</summary>
    public static bool GatewayHasForgotten(SessionKeepingOptions o, DateTimeOffset? lastAnswer, DateTimeOffset now) =>
        lastAnswer is { } last && now - last >= o.GatewaySessionTimeout;

    public static SignInVerdict JudgeSignIn(string retcode, bool automatic, bool heldGuid) =>
        GatewayRetcodes.Handle(retcode) switch
        {
            RetcodeHandling.Success => SignInVerdict.Active,
            RetcodeHandling.AlreadySignedIn when automatic && heldGuid => SignInVerdict.Resume,
            // Perhaps our own earlier sign-in, whose answer was lost: without a heartbeat the gateway ends it in 2 minutes.
            RetcodeHandling.AlreadySignedIn when automatic => SignInVerdict.RetryLater,
            RetcodeHandling.AlreadySignedIn or RetcodeHandling.Hopeless => SignInVerdict.GiveUp,
            _ when automatic => SignInVerdict.RetryLater,
            // A person asked: they see the answer and decide; nothing is retried behind their back.
            _ => SignInVerdict.GiveUp,
        };

    /// <summary>
    /// A new token goes out on a heartbeat only when it is safe for every answer the gateway may give (docs/gateway-
    /// protocol.md §10.1): rotation is on, the interval has passed, the gateway has shown (by a push) that it uses the
    /// current token, and no older token is still in its overlap — so at most two tokens are ever accepted. On a gateway
    /// that never adopts heartbeat tokens this stops after one rotation and the sign-in token keeps working.
    /// </summary>
    public static bool ShouldRotateToken(SessionKeepingOptions o, AgentSession s, DateTimeOffset now) =>
        o.TokenRotationInterval > TimeSpan.Zero
        && s.TokenSeenAt is not null
        && now - (s.LastTokenRotationAt ?? s.SignedInAt ?? now) >= o.TokenRotationInterval
        && (s.PreviousTokenHash is null || s.PreviousTokenValidUntil is { } until && until <= now);

    /// <summary>Doubling from <see cref="SessionKeepingOptions.ReSignInDelay"/> up to <see cref="SessionKeepingOptions.MaxReSignInDelay"/>.</summary>
    public static TimeSpan Backoff(SessionKeepingOptions o, int failures) =>
        failures <= 0
            ? TimeSpan.Zero
            : TimeSpan.FromTicks(Math.Min(o.MaxReSignInDelay.Ticks, o.ReSignInDelay.Ticks << Math.Min(failures - 1, 20)));
}
