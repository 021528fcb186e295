using CallbackHub.Callbacks;
using CallbackHub.Gateway;
using CallbackHub.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

internal sealed record AgentOutcome(AgentSessionView? Session, AgentProblem? Problem);

/// <summary>
/// An agent's session with the gateway, from sign-in to sign-out: the API uses it, and so does the
/// <see cref="SessionKeeper"/> (heartbeats, token rotation, recovery — in AgentSessions.Keeping.cs).
/// </summary>
internal sealed partial class AgentSessions(
    CallbackHubDbContext db,
    GatewayClient gateway,
    PushAuthenticator authenticator,
    EventStore events,
    Credentials credentials,
    PendingTokens pendingTokens,
    IOptions<GatewayOptions> gatewayOptions,
    IOptions<SessionKeepingOptions> sessionOptions,
    Hosting.CallbackHubMetrics metrics,
    TimeProvider time,
    ILogger<AgentSessions> logger)
{
    private SessionKeepingOptions Options => sessionOptions.Value;

    /// <param name="automatic">
    /// Signed in by the keeper (roster, recovery) rather than a person: a failure that may pass is retried
    /// with backoff; one that will not (wrong password, locked account…) is reported and left alone.
    /// </param>
    public async Task<AgentOutcome> SignInAsync(int agentId, SignInRequest request, bool automatic, CancellationToken cancellationToken)
    {
        var token = ServiceToken.Generate();
        // The token must be accepted before the gateway hears of it: the gateway pushes the sign-in's own
        // events (AgentOther_InService…) possibly before it even answers the sign-in.
        var (session, wasLost, conflict) = await ClaimAsync(agentId, ServiceToken.Hash(token), cancellationToken);
        if (conflict is not null)
        {
            return new AgentOutcome(null, conflict);
        }

        // A lost session that cannot be signed in again is still lost; a first sign-in that did not succeed has failed.
        var unsuccessful = wasLost ? AgentSessionState.Lost : AgentSessionState.Failed;

        credentials.Remember(agentId, request);
        await events.EnsureStreamAsync(agentId, cancellationToken);
        authenticator.Forget(agentId);

        var body = ToGatewaySignIn(request, token);
        GatewayAnswer answer;
        try
        {
            answer = await gateway.SignInAsync(agentId, body, cancellationToken);
            if (answer.Retcode == "100-002" && Options.ForceLogin)
            {
                LogForcingLogin(agentId);
                answer = await gateway.ForceLoginAsync(agentId, body, cancellationToken);
            }
        }
        catch (GatewayUnavailableException e)
        {
            // We cannot know whether the gateway signed the agent in: keep accepting its token so that no event it
            // may push is refused, and try again later.
            await SaveAsync(session, s => Unsuccessful(s, unsuccessful, e.Message, backoff: true));
            return new AgentOutcome(null, AgentProblem.GatewayUnavailable(e));
        }

        if (!answer.Succeeded)
        {
            return new AgentOutcome(null, await SignInRefusedAsync(session, unsuccessful, answer, automatic));
        }

        await SaveAsync(session, s =>
        {
            var now = time.GetUtcNow();
            s.State = AgentSessionState.Active;
            s.Guid = answer.Guid;
            s.GatewayCookies = answer.Cookies;
            s.GatewayResult = answer.ResultJson;
            s.SignedInAt = now;
            s.LastGuidChangeAt = now;
            s.LastTokenRotationAt = now;
            s.LastHeartbeatAt = null;
            s.NextSignInAt = null;
            s.SignInFailures = 0;
            // The instance that signed the agent in keeps it, until it stops renewing the lease.
            s.OwnerInstance = Options.InstanceId;
            s.LeaseExpiresAt = now + Options.LeaseDuration;
            s.LastError = answer.Guid is null ? "The gateway's sign-in answer carried no Guid header." : null;
        });
        LogSignedIn(agentId);
        return new AgentOutcome(await GetAsync(agentId, cancellationToken), null);
    }

    public async Task<AgentOutcome> SignOutAsync(int agentId, CancellationToken cancellationToken)
    {
        var session = await db.AgentSessions.SingleOrDefaultAsync(s => s.AgentId == agentId, cancellationToken);
        if (session is null || session.State is AgentSessionState.SignedOut or AgentSessionState.Failed)
        {
            return new AgentOutcome(null, AgentProblem.NotSignedIn(agentId));
        }

        if (session.State == AgentSessionState.SigningOut)
        {
            return new AgentOutcome(null, new AgentProblem(StatusCodes.Status409Conflict, "Sign-out in progress",
                $"Agent {agentId} is being signed out already."));
        }

        if (session.Guid is null)
        {
            return new AgentOutcome(null, new AgentProblem(StatusCodes.Status409Conflict, "Sign-in in progress",
                $"Agent {agentId} has no gateway session yet (its sign-in is in progress or failed); try again in a moment."));
        }

        // Marked first, so that the gateway's sign-out event (it may arrive before the logout answer) is taken as
        // the end we asked for, not as a loss — and the keeper neither heartbeats nor signs the agent in meanwhile.
        var before = session.State;
        await SaveAsync(session, s => s.State = AgentSessionState.SigningOut);
        GatewayAnswer answer;
        try
        {
            answer = await gateway.LogoutAsync(agentId, new GatewaySession(session.Guid, session.GatewayCookies), cancellationToken);
        }
        catch (GatewayUnavailableException e)
        {
            await SaveAsync(session, s => s.State = before);
            return new AgentOutcome(null, AgentProblem.GatewayUnavailable(e));
        }

        // "Not signed in" / "already signed out" mean the gateway has no session either: the goal is reached.
        if (!answer.Succeeded && answer.Retcode is not (GatewayRetcodes.NotSignedIn or GatewayRetcodes.AlreadySignedOut))
        {
            await SaveAsync(session, s => s.State = before);
            return new AgentOutcome(null, AgentProblem.GatewayRefused("sign-out", answer));
        }

        credentials.Forget(agentId);
        var endedToken = session.TokenHash;
        await SaveAsync(session, s =>
        {
            SignedOut(s, null);
            // The gateway's last event of the session comes after its logout answer, with the session's token.
            s.PreviousTokenHash = endedToken;
            s.PreviousTokenValidUntil = s.SignedOutAt + Options.SignOutGrace;
        });
        LogSignedOut(agentId);
        return new AgentOutcome(await GetAsync(agentId, cancellationToken), null);
    }

    public async Task<AgentSessionView?> GetAsync(int agentId, CancellationToken cancellationToken) =>
        (await QueryViews(agentId).ToListAsync(cancellationToken)).SingleOrDefault();

    public async Task<IReadOnlyList<AgentSessionView>> ListAsync(CancellationToken cancellationToken) =>
        await QueryViews(null).ToListAsync(cancellationToken);

    private IQueryable<AgentSessionView> QueryViews(int? agentId) =>
        from session in db.AgentSessions.AsNoTracking()
        where agentId == null || session.AgentId == agentId
        join stream in db.AgentStreams.AsNoTracking() on session.AgentId equals stream.AgentId into streams
        from stream in streams.DefaultIfEmpty()
        orderby session.AgentId
        select AgentSessionView.From(session, stream);

    private async Task<AgentProblem> SignInRefusedAsync(AgentSession session, AgentSessionState unsuccessful, GatewayAnswer answer, bool automatic)
    {
        var problem = AgentProblem.GatewayRefused("sign-in", answer);
        if (answer.Retcode == "100-002")
        {
            problem = problem with { Detail = problem.Detail + " Sign it out where it is signed in, or set Sessions__ForceLogin to take it over." };
        }

        // Retrying these cannot help and may hurt (a wrong password retried locks the account).
        var hopeless = answer.Retcode is "100-001" or "100-002" or "100-004" or "100-012" or "100-015" or "100-016" or "100-020" or "110-016";
        LogSignInRefused(session.AgentId, answer.Retcode, hopeless || !automatic ? "not retried" : "retried with backoff");
        if (automatic && !hopeless)
        {
            await SaveAsync(session, s => Unsuccessful(s, unsuccessful, problem.Detail, backoff: true));
        }
        else
        {
            credentials.Forget(session.AgentId);
            await SaveAsync(session, s =>
            {
                // The gateway said no: it pushes nothing for this sign-in, so nothing needs its token.
                SignedOut(s, problem.Detail + (automatic ? " Not retried automatically." : ""));
                s.State = AgentSessionState.Failed;
                s.SignedOutAt = null;
            });
        }

        return problem;
    }

    /// <summary>
    /// Marks the session "signing-in" with the new token, under a row lock, unless the agent is signed in or a
    /// sign-in is under way (one that started long ago is taken to have died with its instance).
    /// </summary>
    private async Task<(AgentSession Session, bool WasLost, AgentProblem? Conflict)> ClaimAsync(
        int agentId, byte[] tokenHash, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var session = await db.AgentSessions
            .FromSql($"SELECT * FROM agent_sessions WHERE agent_id = {agentId} FOR UPDATE")
            .SingleOrDefaultAsync(cancellationToken);
        var staleSignIn = now - 2 * gatewayOptions.Value.Timeout;
        if (session is { State: AgentSessionState.Active or AgentSessionState.SigningOut }
            || session is { State: AgentSessionState.SigningIn } && session.SignInStartedAt > staleSignIn)
        {
            return (session, false, session.State == AgentSessionState.SigningOut
                ? new AgentProblem(StatusCodes.Status409Conflict, "Sign-out in progress",
                    $"Agent {agentId} is being signed out; the gateway takes no sign-in until that is done. Try again in a moment.")
                : new AgentProblem(StatusCodes.Status409Conflict, "Already signed in",
                    $"Agent {agentId} is {AgentSessionStates.ToText(session.State)}; sign it out first (DELETE /api/agents/{agentId}/session)."));
        }

        var wasLost = session is { State: AgentSessionState.Lost };
        if (session is null)
        {
            session = new AgentSession { AgentId = agentId };
            db.AgentSessions.Add(session);
        }

        // A token of the session being replaced stays good for the overlap: its last pushes may be in flight.
        session.PreviousTokenHash = session.TokenHash;
        session.PreviousTokenValidUntil = session.TokenHash is null ? null : now + Options.TokenOverlap;
        session.TokenHash = tokenHash;
        session.State = AgentSessionState.SigningIn;
        session.Guid = null;
        session.GatewayCookies = null;
        session.GatewayResult = null;
        session.SignInStartedAt = now;
        session.SignedInAt = null;
        session.SignedOutAt = null;
        session.LastError = null;
        session.UpdatedAt = now;
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Another request created the row first.
            return (session, false, new AgentProblem(StatusCodes.Status409Conflict, "Already signing in",
                $"Agent {agentId} is being signed in by another request."));
        }

        await transaction.CommitAsync(cancellationToken);
        pendingTokens.Forget(agentId);
        return (session, wasLost, null);
    }

    private void SignedOut(AgentSession session, string? error)
    {
        session.State = AgentSessionState.SignedOut;
        session.TokenHash = null;
        session.PreviousTokenHash = null;
        session.PreviousTokenValidUntil = null;
        session.Guid = null;
        session.GatewayCookies = null;
        session.OwnerInstance = null;
        session.LeaseExpiresAt = null;
        session.NextSignInAt = null;
        session.SignedOutAt = time.GetUtcNow();
        session.LastError = error;
        pendingTokens.Forget(session.AgentId);
    }

    /// <summary>The gateway no longer has the session; its token is still accepted, the keeper signs in again.</summary>
    private void Lost(AgentSession session, string reason, bool backoff) => Unsuccessful(session, AgentSessionState.Lost, reason, backoff);

    /// <summary>
    /// Lost, or a sign-in that failed for a reason that may pass: the token is still accepted (the gateway may have
    /// the agent signed in after all) and the keeper signs in again, after a backoff when this was a failed try.
    /// </summary>
    private void Unsuccessful(AgentSession session, AgentSessionState state, string reason, bool backoff)
    {
        var now = time.GetUtcNow();
        session.State = state;
        session.LastError = reason;
        session.SignInFailures = backoff ? session.SignInFailures + 1 : 0;
        var delay = backoff
            ? TimeSpan.FromTicks(Math.Min(Options.MaxReSignInDelay.Ticks, Options.ReSignInDelay.Ticks << Math.Min(session.SignInFailures - 1, 20)))
            : TimeSpan.Zero;
        session.NextSignInAt = now + delay;
    }

    /// <summary>Applies a change and saves it, even if the caller gave up meanwhile: the gateway has acted.</summary>
    private async Task SaveAsync(AgentSession session, Action<AgentSession> change)
    {
        change(session);
        session.UpdatedAt = time.GetUtcNow();
        await db.SaveChangesAsync(CancellationToken.None);
        authenticator.Forget(session.AgentId);
    }

    private GatewaySignIn ToGatewaySignIn(SignInRequest r, string token) => new()
    {
        Password = r.Password!,
        PhoneNumber = r.PhoneNumber!,
        AutoAnswer = r.AutoAnswer,
        AutoEnterIdle = r.AutoEnterIdle,
        ReleasePhone = r.ReleasePhone,
        AgentType = r.AgentType,
        Status = r.Status,
        Ip = r.Ip,
        EntryIp = r.EntryIp,
        PhoneLinkage = r.PhoneLinkage,
        CheckInWebm = r.CheckInWebm,
        CheckInMailm = r.CheckInMailm,
        VcPhoneNumber = r.VcPhoneNumber,
        ListenStatus = r.ListenStatus,
        ServiceWorkId = r.ServiceWorkId,
        CallBackUri = gatewayOptions.Value.CallbackUri.AbsoluteUri,
        ServiceToken = token,
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} signed in (push mode)")]
    private partial void LogSignedIn(int agentId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} is already signed in at the gateway; forcing the sign-in (Sessions__ForceLogin)")]
    private partial void LogForcingLogin(int agentId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Gateway refused sign-in of agent {AgentId} with retcode {Retcode}; {Next}")]
    private partial void LogSignInRefused(int agentId, string retcode, string next);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} signed out")]
    private partial void LogSignedOut(int agentId);
}
