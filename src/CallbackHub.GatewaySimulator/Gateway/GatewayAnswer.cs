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

/// <summary>The <c>result</c> of a successful sign-in.</summary>
internal sealed record SignInResult(
    [property: JsonPropertyName("vdnid")] int VdnId,
    [property: JsonPropertyName("workno")] string WorkNo,
    [property: JsonPropertyName("mediatype")] string MediaType,
    [property: JsonPropertyName("loginTime")] long LoginTime,
    [property: JsonPropertyName("isForceChange")] bool IsForceChange,
    [property: JsonPropertyName("serverName")] string ServerName,
    [property: JsonPropertyName("timeRemaining")] int TimeRemaining);

/// <summary>The <c>result</c> of updateGuid.</summary>
internal sealed record GuidResult([property: JsonPropertyName("guid")] string Guid);
