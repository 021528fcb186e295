using System.Text.Json;

namespace CallbackHub.Gateway;

/// <summary>What the gateway answered: its <c>retcode</c> ("0" = success), message, result, and session headers.</summary>
internal sealed record GatewayAnswer(string Retcode, string Message, string? ResultJson, string? Guid, string? Cookies = null)
{
    public const string Success = "0";

    public bool Succeeded => Retcode == Success;

    public static GatewayAnswer Parse(string body, string? guid, string? cookies = null)
    {
        using var document = JsonDocument.Parse(body);
        var root = document.RootElement;
        var retcode = root.TryGetProperty("retcode", out var r) ? r.ToString() : "";
        var message = root.TryGetProperty("message", out var m) ? m.ToString() : "";
        var result = root.TryGetProperty("result", out var res) && res.ValueKind != JsonValueKind.Null ? res.GetRawText() : null;
        return new GatewayAnswer(retcode, message, result, guid, cookies);
    }
}

/// <summary>What authenticates calls after sign-in: the session Guid, and the load balancer's cookies if any.</summary>
internal sealed record GatewaySession(string Guid, string? Cookies);

/// <summary>The gateway could not be reached, timed out, or answered something that is not its JSON.</summary>
internal sealed class GatewayUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
