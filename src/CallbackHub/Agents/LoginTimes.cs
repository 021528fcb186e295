using System.Text.Json;

namespace CallbackHub.Agents;

/// <summary>
/// Reads <c>loginTime</c> — in the sign-in result and in <c>AgentOther_ShutdownService</c> content — which names
/// one gateway session. The gateway writes it as a string or a number; both come back as the digits.
/// </summary>
internal static class LoginTimes
{
    public static string? Read(string? json)
    {
        if (json is null)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("loginTime", out var value)
                && value.ValueKind is JsonValueKind.String or JsonValueKind.Number
                    ? value.ToString()
                    : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
