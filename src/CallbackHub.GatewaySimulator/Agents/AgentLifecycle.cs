using System.Security.Cryptography;
using System.Text;
using CallbackHub.GatewaySimulator.Gateway;
using CallbackHub.GatewaySimulator.Pushing;
using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>The gateway's rules for sign-in, heartbeat, Guid and sign-out, independent of HTTP.</summary>
internal sealed class AgentLifecycle(
    AgentDirectory agents,
    PushDelivery delivery,
    Switchboard switches,
    HeartbeatGaps gaps,
    IOptions<SimulatorOptions> options,
    TimeProvider time,
    ILogger<AgentLifecycle> logger)
{
    private SimulatorOptions Options => options.Value;

    public GatewayOutcome SignIn(string agentId, SignInRequest request, bool force)
    {
        if (!AgentIds.IsValid(agentId))
        {
            return Fail(RetCodes.InvalidParameter, "agentid must be a number from 101 to 999999");
        }

        if (SignInValidation.Check(request) is { } problem)
        {
            return Fail(RetCodes.InvalidParameter, problem);
        }

        var account = Options.Accounts.GetValueOrDefault(agentId);
        if (account?.Locked == true)
        {
            return Fail(RetCodes.AccountLocked, "the account is locked");
        }

        if (account?.Password is { } pinned && !SameSecret(pinned, request.Password!))
        {
            return Fail(RetCodes.WrongPassword, "wrong account or password");
        }

        var agent = agents.GetOrAdd(agentId);
        var now = time.GetUtcNow();
        lock (agent.Gate)
        {
            if (now < agent.SignOutCompletesAt)
            {
                return Fail(RetCodes.SignInInProgress, "a sign-out of this agent is still in progress");
            }

            if (agent.Current is { } existing)
            {
                if (!force)
                {
                    return Fail(RetCodes.AlreadySignedIn, "the agent is already signed in; use forcelogin");
                }

                if (account?.ForceLoginAllowed == false)
                {
                    return Fail(RetCodes.ForceLoginNotAllowed, "the agent is signed in and may not be forced out");
                }

                agent.End(existing, "forcelogin", now, TimeSpan.Zero);
                if (switches.Current.PushShutdownOnForceLogin)
                {
                    delivery.Enqueue(agent, existing, [AgentEvents.ShutdownService(existing)]);
                }
            }

            var session = new AgentSession(agentId, request, new SessionGuids(Options.ServerName, now), now);
            agent.Begin(session, now);
            delivery.Enqueue(agent, session, AgentEvents.SignedIn(request));
            logger.LogInformation("Agent {AgentId} signed in ({Mode} mode{Forced})", agentId, session.IsPush ? "push" : "poll", force ? ", forced" : "");
            return GatewayOutcome.Success with { Session = session, Guid = session.Guids.Current };
        }
    }

    public GatewayOutcome Heartbeat(string agentId, string? guid, string? serviceToken)
    {
        if (serviceToken is not null && !ServiceTokens.IsWellFormed(serviceToken))
        {
            return Fail(RetCodes.InvalidParameter, "service_token must be at most 50 letters and digits");
        }

        return WithSession(agentId, guid, (agent, session, now) =>
        {
            if (serviceToken is not null && session.IsPush)
            {
                session.LastHeartbeatServiceToken = serviceToken;
                if (switches.Current.HeartbeatServiceToken == HeartbeatTokenHandling.Adopt)
                {
                    session.ServiceToken = serviceToken;
                }
            }

            gaps.Record(agent.KeepAlive(now));
            if (Options.AuthMode == AuthMode.Static)
            {
                return GatewayOutcome.Success;
            }

            if (session.Guids.RotateIfDue(now, Options.GuidRotationInterval, Options.GuidExpiry))
            {
                logger.LogDebug("Rotated the Guid of agent {AgentId}", agentId);
            }

            return GatewayOutcome.Success with { Guid = session.Guids.Current };
        });
    }

    /// <summary>
    /// resetskill: signs the session into <paramref name="skillIds"/>, or with null into the account's configured
    /// skill queues (autoflag true). The skills replace those of an earlier resetskill.
    /// </summary>
    public GatewayOutcome ResetSkills(string agentId, string? guid, IReadOnlyList<int>? skillIds) =>
        WithSession(agentId, guid, (_, session, _) =>
        {
            var account = Options.Accounts.GetValueOrDefault(agentId);
            if (account?.ResetSkillFails == true)
            {
                return Fail(RetCodes.InternalError, "internal error while signing the agent into its skill queues");
            }

            session.Skills = skillIds ?? [.. account?.Skills ?? []];
            return GatewayOutcome.Success;
        });

    /// <summary>Dynamic mode hands out a fresh Guid; static mode repeats the session's only one.</summary>
    public GatewayOutcome UpdateGuid(string agentId, string? guid) =>
        WithSession(agentId, guid, (_, session, now) =>
        {
            if (Options.AuthMode == AuthMode.Dynamic)
            {
                session.Guids.Rotate(now, Options.GuidExpiry);
            }

            return GatewayOutcome.Success with { Guid = session.Guids.Current };
        });

    public GatewayOutcome SignOut(string agentId, string? guid, string reason) =>
        WithSession(agentId, guid, (agent, session, now) =>
        {
            EndWithShutdown(agent, session, reason, now, switches.Current.PushShutdownOnSignOut);
            return GatewayOutcome.Success;
        });

    /// <summary>
    /// A sign-out decided by the gateway itself (control API), without a Guid. <paramref name="pushShutdown"/>
    /// overrides the PushShutdownOnSignOut switch for this one sign-out.
    /// </summary>
    public bool ForceSignOut(string agentId, string reason, bool? pushShutdown = null)
    {
        if (agents.Find(agentId) is not { } agent)
        {
            return false;
        }

        lock (agent.Gate)
        {
            return agent.Current is { } session
                && EndWithShutdown(agent, session, reason, time.GetUtcNow(), pushShutdown ?? switches.Current.PushShutdownOnSignOut);
        }
    }

    /// <summary>Rotates the Guid now (control API), as if the rotation interval had passed; null if not signed in.</summary>
    public string? RotateGuid(string agentId)
    {
        if (agents.Find(agentId) is not { } agent)
        {
            return null;
        }

        lock (agent.Gate)
        {
            agent.Current?.Guids.Rotate(time.GetUtcNow(), Options.GuidExpiry);
            return agent.Current?.Guids.Current;
        }
    }

    /// <summary>Checks that the agent is signed in and the Guid is good, then runs <paramref name="action"/> under the agent's lock.</summary>
    public GatewayOutcome WithSession(string agentId, string? guid, Func<Agent, AgentSession, DateTimeOffset, GatewayOutcome> action)
    {
        if (agents.Find(agentId) is not { } agent)
        {
            return NotSignedIn();
        }

        var now = time.GetUtcNow();
        lock (agent.Gate)
        {
            if (agent.Current is not { } session)
            {
                return NotSignedIn();
            }

            return session.Guids.Check(guid, now) switch
            {
                GuidCheck.Current or GuidCheck.Previous => action(agent, session, now),
                GuidCheck.Expired => Fail(RetCodes.NoPermission, "the Guid has expired; use the newest Set-GUID value"),
                _ when string.IsNullOrEmpty(guid) => Fail(RetCodes.NoPermission, "the Guid header is missing"),
                _ => Fail(RetCodes.NotSignedIn, "the Guid does not belong to this agent's session"),
            };
        }
    }

    /// <summary>Signs the agent out (reason heartbeat-timeout) if it sent no heartbeat, nor signed in, for <paramref name="timeout"/>.</summary>
    public void SignOutIfSilent(Agent agent, TimeSpan timeout)
    {
        var now = time.GetUtcNow();
        lock (agent.Gate)
        {
            // A heartbeat may have arrived since the monitor looked.
            if (agent.Current is not { } session || now - (agent.LastHeartbeatAt ?? session.SignedInAt) < timeout)
            {
                return;
            }

            EndWithShutdown(agent, session, Agent.HeartbeatTimeoutReason, now, switches.Current.PushShutdownOnSignOut);
        }
    }

    // Caller holds agent.Gate, which keeps ShutdownService behind every event queued before it.
    private bool EndWithShutdown(Agent agent, AgentSession session, string reason, DateTimeOffset now, bool pushShutdown)
    {
        if (!agent.End(session, reason, now, Options.SignOutDuration))
        {
            return false;
        }

        if (pushShutdown)
        {
            delivery.Enqueue(agent, session, [AgentEvents.ShutdownService(session)]);
        }

        logger.LogInformation("Agent {AgentId} signed out ({Reason})", agent.Id, reason);
        return true;
    }

    private static bool SameSecret(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(presented));

    private static GatewayOutcome NotSignedIn() => Fail(RetCodes.NotSignedIn, "the agent is not signed in");

    private static GatewayOutcome Fail(string retcode, string message) => new(retcode, message);
}
