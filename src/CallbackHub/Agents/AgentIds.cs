namespace CallbackHub.Agents;

/// <summary>Agent ids (the gateway's <c>agentid</c> / <c>workNo</c>) are the numbers 101–999999 (docs/gateway-protocol.md).</summary>
internal static class AgentIds
{
    public const int Min = 101;
    public const int Max = 999999;

    public static bool IsValid(int agentId) => agentId is >= Min and <= Max;

    public static string Range => $"{Min} to {Max}";
}
