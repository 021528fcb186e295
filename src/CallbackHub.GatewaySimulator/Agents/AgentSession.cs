namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>One sign-in of one agent, from sign-in until sign-out. Mutable parts change under the agent's lock.</summary>
internal sealed class AgentSession(string agentId, SignInRequest request, SessionGuids guids, DateTimeOffset signedInAt)
{
    public string AgentId { get; } = agentId;

    public string PhoneNumber { get; } = request.PhoneNum ?? "";

    public int Status { get; } = request.Status ?? 4;

    public bool IsPush { get; } = request.IsPushMode;

    public string? CallBackUri { get; } = request.IsPushMode ? request.CallBackUri : null;

    /// <summary>Replaced by a heartbeat's service_token header; pushes read it when they are sent.</summary>
    public string? ServiceToken { get; set; } = request.IsPushMode ? request.ServiceToken : null;

    public SessionGuids Guids { get; } = guids;

    public DateTimeOffset SignedInAt { get; } = signedInAt;

    public long LoginTimeMs => SignedInAt.ToUnixTimeMilliseconds();
}
