namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>One sign-in of one agent, from sign-in until sign-out. Mutable parts change under the agent's lock.</summary>
internal sealed class AgentSession(string agentId, SignInRequest request, SessionGuids guids, DateTimeOffset signedInAt)
{
    public string AgentId { get; } = agentId;

    public string PhoneNumber { get; } = request.PhoneNum ?? "";

    public int Status { get; } = request.Status ?? 4;

    public bool IsPush { get; } = request.IsPushMode;

    public string? CallBackUri { get; } = request.IsPushMode ? request.CallBackUri : null;

    /// <summary>Pushes read it when they are sent; a heartbeat's service_token replaces it when the HeartbeatServiceToken switch is Adopt.</summary>
    public string? ServiceToken { get; set; } = request.IsPushMode ? request.ServiceToken : null;

    /// <summary>The skill queues the newest resetskill signed the session into; null before the first.</summary>
    public IReadOnlyList<int>? Skills { get; set; }

    /// <summary>The service_token header of the newest heartbeat that had one, whether or not it was adopted.</summary>
    public string? LastHeartbeatServiceToken { get; set; }

    public SessionGuids Guids { get; } = guids;

    public DateTimeOffset SignedInAt { get; } = signedInAt;

    public long LoginTimeMs => SignedInAt.ToUnixTimeMilliseconds();
}
