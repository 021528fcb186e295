using CallbackHub.GatewaySimulator.Gateway;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>What an agent operation answers: a retcode and message, and on success the session or Guid involved.</summary>
internal sealed record GatewayOutcome(string Retcode, string Message)
{
    public AgentSession? Session { get; init; }

    /// <summary>A Guid to hand out in Set-GUID, when the operation issued or confirmed one.</summary>
    public string? Guid { get; init; }

    public bool Succeeded => Retcode == RetCodes.Success;

    public static GatewayOutcome Success { get; } = new(RetCodes.Success, "success");
}
