namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>
/// One POST to a callback. Retries of a batch share <paramref name="BatchId"/> and count up
/// <paramref name="Attempt"/>; they share <paramref name="Body"/> too, unless the PushRetry switch is
/// AppendNewer and newer events were appended. <paramref name="HttpStatus"/> is null when no answer came
/// (connection refused, timeout); <paramref name="Error"/> then says why. <paramref name="OneShot"/>
/// marks push-once calls, which bypass the queue.
/// </summary>
public sealed record PushAttempt(
    long BatchId,
    int Attempt,
    string AgentId,
    DateTimeOffset Time,
    string Url,
    string Guid,
    string ServiceToken,
    IReadOnlyList<string> EventTypes,
    string Body,
    int? HttpStatus,
    string? ResponseBody,
    bool Acknowledged,
    string? Error,
    bool OneShot);

/// <summary>The callback's answer to one push; acknowledged means 2xx with retcode "0".</summary>
public sealed record PushResponse(int? Status, string? Body, bool Acknowledged, string? Error);
