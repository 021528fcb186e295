namespace CallbackHub.GatewaySimulator.Control;

/// <summary>
/// An agent as the control API shows it. Session fields (mode, guid, callBackUri, serviceToken…) describe
/// the signed-in session, or the last one after sign-out. <c>serviceToken</c> is the token pushes carry,
/// <c>heartbeatServiceToken</c> the newest one a heartbeat sent (adopted or not, by the HeartbeatServiceToken
/// switch). <c>skills</c>: the skill queues the session's newest resetskill signed it into (null before one).
/// Push counts cover queued delivery, not push-once.
/// </summary>
public sealed record AgentView(
    string AgentId,
    bool SignedIn,
    string? Mode,
    string? Guid,
    string? CallBackUri,
    string? ServiceToken,
    string? HeartbeatServiceToken,
    string? PhoneNumber,
    int? Status,
    IReadOnlyList<int>? Skills,
    DateTimeOffset? SignedInAt,
    DateTimeOffset? LastHeartbeatAt,
    DateTimeOffset? SignedOutAt,
    string? SignOutReason,
    int Queued,
    long Pushed,
    long Acknowledged,
    long Failed);

/// <summary>The result of queueing events through the control API.</summary>
public enum QueueOutcome
{
    Queued,
    UnknownAgent,

    /// <summary>The agent has never signed in in push mode, so there is no callback to push to.</summary>
    NoPushSession,
}
