using System.Globalization;

namespace CallbackHub.GatewaySimulator;

/// <summary>Agent ids (agentid, workNo) are the numbers 101–999999, written as strings
/// (docs/gateway-protocol.md, introduction; older gateway versions allowed only up to 59999).</summary>
internal static class AgentIds
{
    public const int Min = 101;
    public const int Max = 999_999;

    public static bool IsValid(int id) => id is >= Min and <= Max;

    public static bool IsValid(string? id) =>
        id is { Length: >= 3 and <= 6 }
        && id.All(char.IsAsciiDigit)
        && id[0] != '0'
        && IsValid(int.Parse(id, CultureInfo.InvariantCulture));
}
