using CallbackHub.Gateway;
using CallbackHub.Storage;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

/// <summary>
/// What the keeper does for one session its instance owns: heartbeat, hand over a new token, notice loss, sign in
/// again; and what a push saying the gateway signed the agent out does to the session.
/// </summary>
internal sealed partial class SessionKeeping(
    SessionStore store,
    SignIns signIns,
    GatewayClient gateway,
    Credentials credentials,
    IOptions<SessionKeepingOptions> sessionOptions,
    Hosting.CallbackHubMetrics metrics,
    TimeProvider time,
    ILogger<SessionKeeping> logger)
{
    private SessionKeepingOptions Options => sessionOptions.Value;

    /// <summary>Does what is due for the session, if this instance still owns it.</summary>
    public async Task KeepAsync(int agentId, CancellationToken cancellationToken)
    {
        var session = await store.FindAsync(agentId, cancellationToken);
        var now = time.GetUtcNow();
        var lastAnswer = session?.LastHeartbeatAt ?? session?.SignedInAt;
        if (session is null || session.OwnerInstance != Options.InstanceId
            || !SessionRules.IsDue(Options, session.State, lastAnswer, session.NextSignInAt, session.UpdatedAt, now))
        {
            return;
        }

        switch (session.State)
        {
            case AgentSessionState.Active when session.Guid is null:
                // Nothing to heartbeat with (the gateway's answer had no usable Guid): sign in again.
                await MarkLostAsync(session, "The session has no gateway Guid to heartbeat with.", now);
                break;

            case AgentSessionState.Active when SessionRules.GatewayHasForgotten(Options, lastAnswer, now):
                // The gateway signs an agent out after this long without a heartbeat: it is gone.
                await MarkLostAsync(session, $"No heartbeat was answered for {Options.GatewaySessionTimeout}; the gateway has signed the agent out.", now);
                break;

            case AgentSessionState.Active:
                await HeartbeatAsync(session, now, cancellationToken);
                break;

            case AgentSessionState.Lost or AgentSessionState.Failed when credentials.TryGet(agentId, out var request):
                await signIns.SignInAsync(agentId, request, automatic: true, cancellationToken);
                break;

            case AgentSessionState.Lost or AgentSessionState.Failed:
                // Nobody here can sign it in again (an API sign-in made through another instance): stop trying; the
                // token stays accepted for the gateway's retries until the sign-out grace has passed.
                await store.SaveAsync(session, s => SessionTransitions.SignedOut(s,
                    $"{s.LastError} No instance that kept it knows the credentials to sign it in again: sign it in through the API.", now, Options.SignOutGrace));
                LogAbandoned(agentId);
                break;

            // Its outcome is unknown, so the session is lost (its token still taken) and signed in again where
            // credentials are known.
            case AgentSessionState.SigningIn:
                await MarkLostAsync(session, "A sign-in was interrupted (its instance stopped before the gateway answered).", now);
                break;

            // Its instance died between our logout call and the gateway's answer. Either the gateway signed the agent
            // out, or, with no heartbeat coming, it has done so by now: the sign-out is complete either way.
            case AgentSessionState.SigningOut:
                credentials.Forget(agentId);
                await store.SaveAsync(session, s => SessionTransitions.SignedOut(s,
                    "A sign-out was interrupted (its instance stopped); the gateway has signed the agent out for want of heartbeats.", now, TimeSpan.Zero));
                break;
        }
    }

    /// <summary>
    /// An <c>AgentOther_ShutdownService</c> event arrived: the session it names is over. Its <c>loginTime</c> tells
    /// which session that was — after a forced sign-in the gateway ends the replaced session this way, and that must
    /// not make us drop the new one (and sign in again, and force again…). Our own sign-out expects it.
    /// </summary>
    public async Task SignedOutByGatewayAsync(int agentId, string? endedLoginTime, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var session = await store.FindAsync(agentId, cancellationToken);
            if (session is not { State: AgentSessionState.Active })
            {
                return;
            }

            var currentLoginTime = LoginTimes.Read(session.GatewayResult);
            if (endedLoginTime is not null && currentLoginTime is not null && endedLoginTime != currentLoginTime)
            {
                LogOldSessionEnded(agentId);
                return;
            }

            if (await MarkLostAsync(session, "The gateway signed the agent out (AgentOther_ShutdownService).", time.GetUtcNow()))
            {
                return;
            }

            // The row changed meanwhile (a heartbeat, a rotation): judge again on what it is now.
            store.Db.ChangeTracker.Clear();
        }
    }

    private async Task<bool> MarkLostAsync(AgentSession session, string reason, DateTimeOffset now)
    {
        if (!await store.SaveAsync(session, s => SessionTransitions.Lost(s, reason, now)))
        {
            return false;
        }

        LogLost(session.AgentId, reason, credentials.TryGet(session.AgentId, out _) ? "signing in again" : "no credentials here to sign in again");
        return true;
    }

    private async Task HeartbeatAsync(AgentSession session, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // A new token is stored before it is sent: if this save fails (the row changed, another instance took the
        // agent), nothing is sent — a token never goes out that the session's stored state does not know.
        string? newToken = null;
        if (SessionRules.ShouldRotateToken(Options, session, now))
        {
            var token = ServiceToken.Generate();
            if (!await store.SaveAsync(session, s => SessionTransitions.Rotate(s, ServiceToken.Hash(token), now)))
            {
                return;
            }

            newToken = token;
        }

        GatewayAnswer answer;
        try
        {
            answer = await gateway.HeartbeatAsync(session.AgentId, new GatewaySession(session.Guid!, session.GatewayCookies), newToken, cancellationToken);
        }
        catch (GatewayUnavailableException e)
        {
            // Keep trying until the gateway's window closes; KeepAsync notices when it has. A token sent is kept
            // (the gateway may have taken it); it is not sent again, and the next rotation waits until one is seen.
            metrics.HeartbeatFailed("unreachable");
            await store.SaveAsync(session, s => s.LastError = $"Heartbeat failed: {e.Message}");
            return;
        }

        if (!answer.Succeeded)
        {
            metrics.HeartbeatFailed(answer.Retcode);
            var described = $"The gateway answered the heartbeat with {answer.Retcode} ({GatewayRetcodes.Describe(answer.Retcode)})";
            if (GatewayRetcodes.Handle(answer.Retcode) == RetcodeHandling.SessionGone)
            {
                await MarkLostAsync(session, described + ".", time.GetUtcNow());
            }
            else
            {
                // Passing trouble (switch-over, called repeatedly…) or an odd answer: try again, the session stands.
                await store.SaveAsync(session, s => s.LastError = $"{described}: {answer.Message}");
            }

            return;
        }

        await store.SaveAsync(session, s => SessionTransitions.HeartbeatAnswered(s, answer, time.GetUtcNow()));
        if (newToken is not null)
        {
            metrics.TokenRotated();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The gateway ended an earlier session of agent {AgentId}; the current one goes on")]
    private partial void LogOldSessionEnded(int agentId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session of agent {AgentId} lost: {Reason}; {Next}")]
    private partial void LogLost(int agentId, string reason, string next);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session of agent {AgentId} given up: no instance that kept it knows its credentials")]
    private partial void LogAbandoned(int agentId);
}
