using CallbackHub.Gateway;
using CallbackHub.Outbox;
using CallbackHub.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

internal sealed record AgentOutcome(AgentSessionView? Session, AgentProblem? Problem);

/// <summary>
/// Signing an agent in (push mode, then its skill queues) and out: for the API, the roster and the keeper's recovery.
/// </summary>
internal sealed partial class SignIns(
    SessionStore store,
    GatewayClient gateway,
    EventStore events,
    Credentials credentials,
    IOptions<GatewayOptions> gatewayOptions,
    IOptions<SessionKeepingOptions> sessionOptions,
    TimeProvider time,
    ILogger<SignIns> logger)
{
    private SessionKeepingOptions Options => sessionOptions.Value;

    /// <param name="automatic">
    /// Signed in by the keeper (roster, recovery) rather than a person: a failure that may pass is retried with
    /// backoff; one that will not (wrong password, locked account…) is reported and left alone.
    /// </param>
    public async Task<AgentOutcome> SignInAsync(int agentId, SignInRequest request, bool automatic, CancellationToken cancellationToken)
    {
        var token = ServiceToken.Generate();
        // The token must be accepted before the gateway hears of it: the gateway pushes the sign-in's own
        // events (AgentOther_InService…) possibly before it even answers the sign-in.
        var (claim, conflict) = await ClaimAsync(agentId, ServiceToken.Hash(token), cancellationToken);
        if (conflict is not null)
        {
            return new AgentOutcome(null, conflict);
        }

        var session = claim!.Session;
        credentials.Remember(agentId, request);
        await events.StartSessionAsync(agentId, cancellationToken);

        var body = ToGatewaySignIn(request, token);
        GatewayAnswer answer;
        try
        {
            answer = await gateway.SignInAsync(agentId, body, cancellationToken);
            if (answer.Retcode == GatewayRetcodes.AlreadySignedIn && Options.ForceLogin)
            {
                LogForcingLogin(agentId);
                answer = await gateway.ForceLoginAsync(agentId, body, cancellationToken);
            }
        }
        catch (GatewayUnavailableException e)
        {
            // We cannot know whether the gateway signed the agent in: keep accepting its token so that no event it
            // may push is refused, and try again later.
            await store.SaveAsync(session, s => SessionTransitions.Unsuccessful(s, claim.Unsuccessful, e.Message, Options, time.GetUtcNow()));
            return new AgentOutcome(null, AgentProblem.GatewayUnavailable(e));
        }

        var verdict = SessionRules.JudgeSignIn(answer.Retcode, automatic, claim.HeldGuid is not null);
        switch (verdict)
        {
            case SignInVerdict.Active:
                // The gateway has signed the agent in: record it unless the row has moved on meanwhile (another sign-in).
                while (!await store.SaveAsync(session, s => SessionTransitions.SignedIn(s, answer, Options.InstanceId, time.GetUtcNow())))
                {
                    if (session.State != AgentSessionState.SigningIn || !session.TokenHash.AsSpan().SequenceEqual(ServiceToken.Hash(token)))
                    {
                        LogSignInOverridden(agentId);
                        return new AgentOutcome(await store.GetViewAsync(agentId, cancellationToken), null);
                    }
                }

                await store.LeaseAsync(agentId, Options.InstanceId, Options.LeaseDuration);
                LogSignedIn(agentId);
                await ApplySkillsAsync(session, request, cancellationToken);
                return new AgentOutcome(await store.GetViewAsync(agentId, cancellationToken), null);

            case SignInVerdict.Resume:
                await store.SaveAsync(session, s => SessionTransitions.Resume(s, claim, Options.InstanceId, time.GetUtcNow(), Options.HeartbeatInterval));
                await store.LeaseAsync(agentId, Options.InstanceId, Options.LeaseDuration);
                LogResumed(agentId);
                return new AgentOutcome(await store.GetViewAsync(agentId, cancellationToken), null);
        }

        var problem = AgentProblem.GatewayRefused("sign-in", answer);
        if (answer.Retcode == GatewayRetcodes.AlreadySignedIn)
        {
            problem = problem with { Detail = problem.Detail + " Sign it out where it is signed in, or set Sessions__ForceLogin to take it over." };
        }

        LogSignInRefused(agentId, answer.Retcode, verdict == SignInVerdict.RetryLater ? "retried with backoff" : "not retried");
        if (verdict == SignInVerdict.RetryLater)
        {
            await store.SaveAsync(session, s => SessionTransitions.Unsuccessful(s, claim.Unsuccessful, problem.Detail, Options, time.GetUtcNow()));
        }
        else
        {
            credentials.Forget(agentId);
            await store.SaveAsync(session, s => SessionTransitions.Refused(s, problem.Detail + (automatic ? " Not retried automatically." : "")));
        }

        return new AgentOutcome(null, problem);
    }

    public async Task<AgentOutcome> SignOutAsync(int agentId, CancellationToken cancellationToken)
    {
        // Marked first, so that the gateway's sign-out event (it may arrive before the logout answer) is taken as
        // the end we asked for, not as a loss — and the keeper neither heartbeats nor signs the agent in meanwhile.
        // A heartbeat saved meanwhile changes the row: read it again and retry.
        AgentSession? session = null;
        AgentSessionState before = default;
        for (var attempt = 0; session?.State != AgentSessionState.SigningOut; attempt++)
        {
            session = await store.FindAsync(agentId, cancellationToken);
            if (session is null || session.State is AgentSessionState.SignedOut or AgentSessionState.Failed)
            {
                return new AgentOutcome(null, AgentProblem.NotSignedIn(agentId));
            }

            if (session.State == AgentSessionState.SigningOut || attempt == 3)
            {
                return new AgentOutcome(null, new AgentProblem(StatusCodes.Status409Conflict, "Sign-out in progress",
                    $"Agent {agentId} is being signed out already, or its session keeps changing; try again in a moment."));
            }

            if (session.Guid is null)
            {
                return new AgentOutcome(null, new AgentProblem(StatusCodes.Status409Conflict, "Sign-in in progress",
                    $"Agent {agentId} has no gateway session yet (its sign-in is in progress or failed); try again in a moment."));
            }

            before = session.State;
            if (!await store.SaveAsync(session, s => s.State = AgentSessionState.SigningOut))
            {
                store.Db.ChangeTracker.Clear();
            }
        }

        GatewayAnswer answer;
        try
        {
            answer = await gateway.LogoutAsync(agentId, new GatewaySession(session.Guid!, session.GatewayCookies), cancellationToken);
        }
        catch (GatewayUnavailableException e)
        {
            await store.SaveAsync(session, s => s.State = before);
            return new AgentOutcome(null, AgentProblem.GatewayUnavailable(e));
        }

        // "Not signed in" / "already signed out" mean the gateway has no session either: the goal is reached.
        if (!answer.Succeeded && answer.Retcode is not (GatewayRetcodes.NotSignedIn or GatewayRetcodes.AlreadySignedOut))
        {
            await store.SaveAsync(session, s => s.State = before);
            return new AgentOutcome(null, AgentProblem.GatewayRefused("sign-out", answer));
        }

        credentials.Forget(agentId);
        await store.SaveAsync(session, s => SessionTransitions.SignedOut(s, null, time.GetUtcNow(), Options.SignOutGrace));
        LogSignedOut(agentId);
        return new AgentOutcome(await store.GetViewAsync(agentId, cancellationToken), null);
    }

    /// <summary>
    /// The documented push-mode flow is sign in → resetskill → heartbeats: without it the agent takes no queued
    /// calls. Applied after every sign-in, automatic ones too; a refusal is reported in lastError, the session stays.
    /// </summary>
    private async Task ApplySkillsAsync(AgentSession session, SignInRequest request, CancellationToken cancellationToken)
    {
        if (request.Skills is not { } skills || session.Guid is null)
        {
            return;
        }

        string? error;
        try
        {
            var answer = await gateway.ResetSkillsAsync(
                session.AgentId, new GatewaySession(session.Guid, session.GatewayCookies), skills.Auto, skills.Ids, skills.PhoneLinkage, cancellationToken);
            error = answer.Succeeded
                ? null
                : $"The gateway refused the skill queues with retcode {answer.Retcode} ({GatewayRetcodes.Describe(answer.Retcode)}): {answer.Message}";
        }
        catch (GatewayUnavailableException e)
        {
            error = $"The skill queues could not be set: {e.Message}";
        }

        if (error is not null)
        {
            LogSkillsRefused(session.AgentId, error);
            await store.SaveAsync(session, s => s.LastError = error);
        }
    }

    /// <summary>
    /// Marks the session "signing-in" with the new token, under a row lock, unless the agent is signed in or a sign-in
    /// or sign-out is under way (one that started long ago is taken to have died with its instance). What the gateway
    /// may still hold — the Guid and the token of a lost session — is kept aside, for a resume.
    /// </summary>
    private async Task<(SignInClaim? Claim, AgentProblem? Conflict)> ClaimAsync(int agentId, byte[] tokenHash, CancellationToken cancellationToken)
    {
        var db = store.Db;
        using var slot = await store.EnterDatabaseAsync(cancellationToken);
        var now = time.GetUtcNow();
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var session = await db.AgentSessions
            .FromSql($"SELECT * FROM agent_sessions WHERE agent_id = {agentId} FOR UPDATE")
            .SingleOrDefaultAsync(cancellationToken);
        var staleSignIn = now - 2 * gatewayOptions.Value.Timeout;
        if (session is { State: AgentSessionState.Active or AgentSessionState.SigningOut }
            || session is { State: AgentSessionState.SigningIn } && session.SignInStartedAt > staleSignIn)
        {
            return (null, session.State == AgentSessionState.SigningOut
                ? new AgentProblem(StatusCodes.Status409Conflict, "Sign-out in progress",
                    $"Agent {agentId} is being signed out; the gateway takes no sign-in until that is done. Try again in a moment.")
                : new AgentProblem(StatusCodes.Status409Conflict, "Already signed in",
                    $"Agent {agentId} is {AgentSessionStates.ToText(session.State)}; sign it out first (DELETE /api/agents/{agentId}/session)."));
        }

        if (session is null)
        {
            session = new AgentSession { AgentId = agentId };
            db.AgentSessions.Add(session);
        }

        var claim = new SignInClaim(
            session,
            session.State == AgentSessionState.Lost ? AgentSessionState.Lost : AgentSessionState.Failed,
            session.State == AgentSessionState.Lost ? session.Guid : null,
            session.GatewayCookies,
            session.GatewayResult,
            session.TokenHash,
            session.TokenSeenAt,
            session.SignedInAt);
        SessionTransitions.SigningIn(session, tokenHash, now, Options.TokenOverlap);
        // Ours while the sign-in runs: no other instance's keeper takes the row (and changes it) meanwhile. The round
        // renews the lease on the database's clock from then on.
        session.OwnerInstance = Options.InstanceId;
        session.LeaseExpiresAt = now + Options.LeaseDuration;
        session.UpdatedAt = now;
        session.Version++;
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Another request created or changed the row first.
            return (null, new AgentProblem(StatusCodes.Status409Conflict, "Already signing in",
                $"Agent {agentId} is being signed in by another request."));
        }

        await transaction.CommitAsync(cancellationToken);
        // Known here from now on: the gateway pushes with the new token as soon as it takes the sign-in, often before it
        // answers, and those pushes must not wait for a token lookup.
        store.TokensChanged(session);
        return (claim, null);
    }

    private GatewaySignIn ToGatewaySignIn(SignInRequest r, string token) => new()
    {
        Password = r.Password ?? "",
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {AgentId} was signed in, but its session changed meanwhile; the newer state stands")]
    private partial void LogSignInOverridden(int agentId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} is still signed in at the gateway; its session is resumed")]
    private partial void LogResumed(int agentId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} is already signed in at the gateway; forcing the sign-in (Sessions__ForceLogin)")]
    private partial void LogForcingLogin(int agentId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Gateway refused sign-in of agent {AgentId} with retcode {Retcode}; {Next}")]
    private partial void LogSignInRefused(int agentId, string retcode, string next);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skill queues of agent {AgentId} not set: {Error}")]
    private partial void LogSkillsRefused(int agentId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} signed out")]
    private partial void LogSignedOut(int agentId);
}

/// <summary>A session marked signing-in, and what it was before: what a failed or resumed sign-in goes back to.</summary>
internal sealed record SignInClaim(
    AgentSession Session,
    AgentSessionState Unsuccessful,
    string? HeldGuid,
    string? HeldCookies,
    string? HeldResult,
    byte[]? HeldTokenHash,
    DateTimeOffset? HeldTokenSeenAt,
    DateTimeOffset? HeldSignedInAt);
