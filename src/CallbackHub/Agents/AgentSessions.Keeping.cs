using CallbackHub.Gateway;
using CallbackHub.Storage;
using Microsoft.EntityFrameworkCore;

namespace CallbackHub.Agents;

/// <summary>What the keeper does for one session it owns: heartbeat, rotate the token, notice loss, recover.</summary>
internal sealed partial class AgentSessions
{
    public async Task KeepAsync(int agentId, CancellationToken cancellationToken)
    {
        var session = await db.AgentSessions.SingleOrDefaultAsync(s => s.AgentId == agentId, cancellationToken);
        var now = time.GetUtcNow();
        var lastAnswer = session?.LastHeartbeatAt ?? session?.SignedInAt;
        if (session is null || !Options.IsDue(session.State, lastAnswer, session.NextSignInAt, session.UpdatedAt, now))
        {
            return;
        }

        switch (session.State)
        {
            case AgentSessionState.Active when session.Guid is not null:
                if (now - (lastAnswer ?? now) >= Options.GatewaySessionTimeout)
                {
                    // The gateway signs an agent out after this long without a heartbeat: it is gone.
                    await MarkLostAsync(session, $"No heartbeat was answered for {Options.GatewaySessionTimeout}; the gateway has signed the agent out.");
                }
                else
                {
                    await HeartbeatAsync(session, now, cancellationToken);
                }

                break;

            case AgentSessionState.Lost or AgentSessionState.Failed when credentials.TryGet(agentId, out var request):
                await SignInAsync(agentId, request, automatic: true, cancellationToken);
                break;

            // Its instance died between our logout call and the gateway's answer. Either the gateway signed the agent
            // out, or, with no heartbeat coming, it has done so by now: the sign-out is complete either way.
            case AgentSessionState.SigningOut:
                credentials.Forget(agentId);
                await SaveAsync(session, s => SignedOut(s, "A sign-out was interrupted (its instance stopped); the gateway has signed the agent out for want of heartbeats."));
                break;

            // Its outcome is unknown, so the session is lost (its token still taken) and signed in again where
            // credentials are known.
            case AgentSessionState.SigningIn:
                await MarkLostAsync(session, "A sign-in was interrupted (its instance stopped before the gateway answered).");
                break;
        }
    }

    /// <summary>
    /// An <c>AgentOther_ShutdownService</c> event arrived: the session it names is over. Its <c>loginTime</c> tells
    /// which session that was — after a forced sign-in the gateway ends the replaced session this way, and that
    /// must not make us drop the new one (and sign in again, and force again…).
    /// </summary>
    public async Task SignedOutByGatewayAsync(int agentId, string? endedLoginTime, CancellationToken cancellationToken)
    {
        var session = await db.AgentSessions.SingleOrDefaultAsync(s => s.AgentId == agentId, cancellationToken);
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

        await MarkLostAsync(session, "The gateway signed the agent out (AgentOther_ShutdownService).");
    }

    private async Task MarkLostAsync(AgentSession session, string reason)
    {
        await SaveAsync(session, s => Lost(s, reason, backoff: false));
        LogLost(session.AgentId, reason, credentials.TryGet(session.AgentId, out _) ? "signing in again" : "no credentials to sign in again");
    }

    private async Task HeartbeatAsync(AgentSession session, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var token = await TokenToSendAsync(session, now);
        GatewayAnswer answer;
        try
        {
            answer = await gateway.HeartbeatAsync(session.AgentId, new GatewaySession(session.Guid!, session.GatewayCookies), token, cancellationToken);
        }
        catch (GatewayUnavailableException e)
        {
            // Keep trying until the gateway's window closes; KeepAsync notices when it has.
            metrics.HeartbeatFailed("unreachable");
            await SaveAsync(session, s => s.LastError = $"Heartbeat failed: {e.Message}");
            return;
        }

        if (answer.Retcode is GatewayRetcodes.NotSignedIn or GatewayRetcodes.AuthExpired)
        {
            metrics.HeartbeatFailed(answer.Retcode);
            await MarkLostAsync(session, $"The gateway answered the heartbeat with {answer.Retcode} ({GatewayRetcodes.Describe(answer.Retcode)}).");
            return;
        }

        if (!answer.Succeeded)
        {
            metrics.HeartbeatFailed(answer.Retcode);
            await SaveAsync(session, s => s.LastError = $"Heartbeat refused with {answer.Retcode}: {answer.Message}");
            return;
        }

        await SaveAsync(session, s =>
        {
            var answeredAt = time.GetUtcNow();
            s.LastHeartbeatAt = answeredAt;
            s.LastError = null;
            // Dynamic authentication: the gateway hands out the next Guid on the heartbeat; always adopt it.
            if (answer.Guid is { Length: > 0 } guid && guid != s.Guid)
            {
                s.Guid = guid;
                s.LastGuidChangeAt = answeredAt;
            }

            if (answer.Cookies is { Length: > 0 } cookies)
            {
                s.GatewayCookies = cookies;
            }

            if (token is not null)
            {
                // The gateway has the new token: the old one now only covers pushes already in flight.
                s.PreviousTokenValidUntil = answeredAt + Options.TokenOverlap;
                s.LastTokenRotationAt = answeredAt;
            }
        });
        if (token is not null)
        {
            pendingTokens.Forget(session.AgentId);
            metrics.TokenRotated();
        }
    }

    /// <summary>
    /// The token to hand the gateway on this heartbeat, if a rotation is due (or one sent earlier was not
    /// confirmed). It is stored — as a hash — before it is sent, so that the gateway's very next push is
    /// accepted by every instance; the old token stays good until the overlap after the gateway confirms.
    /// </summary>
    private async Task<string?> TokenToSendAsync(AgentSession session, DateTimeOffset now)
    {
        if (pendingTokens.TryGet(session.AgentId, out var pending))
        {
            return pending;
        }

        if (now - (session.LastTokenRotationAt ?? session.SignedInAt ?? now) < Options.TokenRotationInterval)
        {
            return null;
        }

        var token = ServiceToken.Generate();
        await SaveAsync(session, s =>
        {
            s.PreviousTokenHash = s.TokenHash;
            // Until the gateway confirms, it may still use the old token for as long as the session can live.
            s.PreviousTokenValidUntil = now + Options.GatewaySessionTimeout + Options.TokenOverlap;
            s.TokenHash = ServiceToken.Hash(token);
        });
        pendingTokens.Remember(session.AgentId, token);
        return token;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The gateway ended an earlier session of agent {AgentId}; the current one goes on")]
    private partial void LogOldSessionEnded(int agentId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session of agent {AgentId} lost: {Reason}; {Next}")]
    private partial void LogLost(int agentId, string reason, string next);
}
