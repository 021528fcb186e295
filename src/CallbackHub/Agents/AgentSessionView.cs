using System.Text.Json;
using CallbackHub.Storage;

namespace CallbackHub.Agents;

/// <summary>What the API shows of a session. Never the token, nor the gateway Guid (both are credentials).</summary>
internal sealed record AgentSessionView(
    int AgentId,
    string State,
    DateTimeOffset? SignInStartedAt,
    DateTimeOffset? SignedInAt,
    DateTimeOffset? SignedOutAt,
    DateTimeOffset UpdatedAt,
    string? OwnerInstance,
    DateTimeOffset? LastHeartbeatAt,
    DateTimeOffset? LastGuidChangeAt,
    DateTimeOffset? LastTokenRotationAt,
    DateTimeOffset? LastEventAt,
    long LastSequence,
    string? LastError,
    JsonElement? Gateway)
{
    public static AgentSessionView From(AgentSession session, AgentStream? stream) => new(
        session.AgentId,
        AgentSessionStates.ToText(session.State),
        session.SignInStartedAt,
        session.SignedInAt,
        session.SignedOutAt,
        session.UpdatedAt,
        session.OwnerInstance,
        session.LastHeartbeatAt,
        session.LastGuidChangeAt,
        session.LastTokenRotationAt,
        stream?.LastBatchAt,
        stream?.LastSequence ?? 0,
        session.LastError,
        session.GatewayResult is null ? null : JsonDocument.Parse(session.GatewayResult).RootElement.Clone());
}
