using System.Globalization;
using System.Text.Json.Serialization;
using CallbackHub.GatewaySimulator.Agents;
using CallbackHub.GatewaySimulator.Recording;

namespace CallbackHub.GatewaySimulator.Gateway;

/// <summary>Every gateway answer: <c>{"message":…,"retcode":…,"result":…}</c>, HTTP 200 even for business errors.</summary>
internal sealed record GatewayAnswer(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("retcode")] string Retcode,
    [property: JsonPropertyName("result"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] object? Result)
{
    public static IResult Reply(HttpContext http, GatewayOutcome outcome, object? result = null)
    {
        Record(http, outcome.Retcode);
        return Results.Json(new GatewayAnswer(outcome.Message, outcome.Retcode, outcome.Succeeded ? result : null));
    }

    /// <summary>Notes the retcode on the recorded request before the answer leaves, so a test sees both together.</summary>
    public static void Record(HttpContext http, string retcode)
    {
        if (http.Features.Get<RecordedRequest>() is { } record)
        {
            record.Retcode = retcode;
        }
    }
}

/// <summary>
/// The <c>result</c> of a successful sign-in. Every field is a string except <c>vdnid</c>, as documented
/// (docs/gateway-protocol.md §1): <c>"loginTime":"1471585949806"</c>, <c>"isForceChange":"false"</c>, <c>"timeRemaining":"9"</c>.
/// </summary>
internal sealed record SignInResult(
    [property: JsonPropertyName("vdnid")] int VdnId,
    [property: JsonPropertyName("workno")] string WorkNo,
    [property: JsonPropertyName("mediatype")] string MediaType,
    [property: JsonPropertyName("loginTime")] string LoginTime,
    [property: JsonPropertyName("isForceChange")] string IsForceChange,
    [property: JsonPropertyName("serverName")] string ServerName,
    [property: JsonPropertyName("timeRemaining")] string TimeRemaining)
{
    /// <summary>Huawei's example value; the pages do not say what it counts.</summary>
    public const string ExampleTimeRemaining = "9";

    // mediatype: CTI server, WebM and MailM flags; the simulator has the CTI server and WebM.
    public static SignInResult Of(int vdnId, string agentId, AgentSession session, string serverName) =>
        new(vdnId, agentId, "TTF", session.LoginTimeMs.ToString(CultureInfo.InvariantCulture), "false", serverName, ExampleTimeRemaining);
}

/// <summary>The <c>result</c> of updateGuid.</summary>
internal sealed record GuidResult([property: JsonPropertyName("guid")] string Guid);
