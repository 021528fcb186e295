using CallbackHub.Callbacks;
using CallbackHub.Gateway;
using CallbackHub.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

internal sealed record AgentOutcome(AgentSessionView? Session, AgentProblem? Problem);

/// <summary>Signs agents in (push mode) and out through the gateway, and keeps their sessions in PostgreSQL.</summary>
internal sealed partial class AgentSessions(
    CallbackHubDbContext db,
    GatewayClient gateway,
    PushAuthenticator authenticator,
    EventStore events,
    IOptions<GatewayOptions> gatewayOptions,
    TimeProvider time,
    ILogger<AgentSessions> logger)
{
    public async Task<AgentOutcome> SignInAsync(int agentId, SignInRequest request, CancellationToken cancellationToken)
    {
        var token = ServiceToken.Generate();
        // The token must be accepted before the gateway hears of it: the gateway pushes the sign-in's own
        // events (AgentOther_InService…) possibly before it even answers the sign-in.
        var (session, conflict) = await ClaimAsync(agentId, ServiceToken.Hash(token), cancellationToken);
        if (conflict is not null)
        {
            return new AgentOutcome(null, conflict);
        }

        await events.EnsureStreamAsync(agentId, cancellationToken);
        authenticator.Forget(agentId);

        var body = ToGatewaySignIn(request, token);
        GatewayAnswer answer;
        try
        {
            answer = await gateway.SignInAsync(agentId, body, cancellationToken);
        }
        catch (GatewayUnavailableException e)
        {
            // We cannot know whether the gateway signed the agent in: keep accepting its token (state "lost") so
            // that no event it may push is refused.
            await SaveAsync(session!, s => { s.State = AgentSessionState.Lost; s.LastError = e.Message; });
            return new AgentOutcome(null, AgentProblem.GatewayUnavailable(e));
        }

        if (!answer.Succeeded)
        {
            var problem = AgentProblem.GatewayRefused("sign-in", answer);
            await SaveAsync(session!, s => SignedOut(s, problem.Detail));
            LogSignInRefused(agentId, answer.Retcode);
            return new AgentOutcome(null, problem);
        }

        await SaveAsync(session!, s =>
        {
            s.State = AgentSessionState.Active;
            s.Guid = answer.Guid;
            s.GatewayResult = answer.ResultJson;
            s.SignedInAt = time.GetUtcNow();
            s.LastError = answer.Guid is null ? "The gateway's sign-in answer carried no Guid header." : null;
        });
        LogSignedIn(agentId);
        return new AgentOutcome(await GetAsync(agentId, cancellationToken), null);
    }

    public async Task<AgentOutcome> SignOutAsync(int agentId, CancellationToken cancellationToken)
    {
        var session = await db.AgentSessions.SingleOrDefaultAsync(s => s.AgentId == agentId, cancellationToken);
        if (session is null || session.State == AgentSessionState.SignedOut)
        {
            return new AgentOutcome(null, AgentProblem.NotSignedIn(agentId));
        }

        if (session.Guid is null)
        {
            return new AgentOutcome(null, new AgentProblem(StatusCodes.Status409Conflict, "Sign-in in progress",
                $"Agent {agentId} has no gateway session yet (its sign-in is in progress or failed); try again in a moment."));
        }

        GatewayAnswer answer;
        try
        {
            answer = await gateway.LogoutAsync(agentId, session.Guid, cancellationToken);
        }
        catch (GatewayUnavailableException e)
        {
            return new AgentOutcome(null, AgentProblem.GatewayUnavailable(e));
        }

        // "Not signed in" / "already signed out" mean the gateway has no session either: the goal is reached.
        if (!answer.Succeeded && answer.Retcode is not (GatewayRetcodes.NotSignedIn or GatewayRetcodes.AlreadySignedOut))
        {
            return new AgentOutcome(null, AgentProblem.GatewayRefused("sign-out", answer));
        }

        await SaveAsync(session, s => SignedOut(s, null));
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

    /// <summary>
    /// Marks the session "signing-in" with the new token, under a row lock, unless the agent is signed in or a
    /// sign-in is under way (one that started long ago is taken to have died with its instance).
    /// </summary>
    private async Task<(AgentSession? Session, AgentProblem? Conflict)> ClaimAsync(
        int agentId, byte[] tokenHash, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var session = await db.AgentSessions
            .FromSql($"SELECT * FROM agent_sessions WHERE agent_id = {agentId} FOR UPDATE")
            .SingleOrDefaultAsync(cancellationToken);
        var staleSignIn = now - 2 * gatewayOptions.Value.Timeout;
        if (session is { State: AgentSessionState.Active }
            || session is { State: AgentSessionState.SigningIn } && session.SignInStartedAt > staleSignIn)
        {
            return (null, new AgentProblem(StatusCodes.Status409Conflict, "Already signed in",
                $"Agent {agentId} is {AgentSessionStates.ToText(session.State)}; sign it out first (DELETE /api/agents/{agentId}/session)."));
        }

        if (session is null)
        {
            session = new AgentSession { AgentId = agentId };
            db.AgentSessions.Add(session);
        }

        session.State = AgentSessionState.SigningIn;
        session.TokenHash = tokenHash;
        session.PreviousTokenHash = null;
        session.PreviousTokenValidUntil = null;
        session.Guid = null;
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
            return (null, new AgentProblem(StatusCodes.Status409Conflict, "Already signing in",
                $"Agent {agentId} is being signed in by another request."));
        }

        await transaction.CommitAsync(cancellationToken);
        return (session, null);
    }

    private void SignedOut(AgentSession session, string? error)
    {
        session.State = AgentSessionState.SignedOut;
        session.TokenHash = null;
        session.PreviousTokenHash = null;
        session.PreviousTokenValidUntil = null;
        session.Guid = null;
        session.SignedOutAt = time.GetUtcNow();
        session.LastError = error;
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Gateway refused sign-in of agent {AgentId} with retcode {Retcode}")]
    private partial void LogSignInRefused(int agentId, string retcode);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId} signed out")]
    private partial void LogSignedOut(int agentId);
}
