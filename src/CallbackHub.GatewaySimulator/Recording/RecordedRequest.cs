namespace CallbackHub.GatewaySimulator.Recording;

/// <summary>One gateway API request as it arrived, so tests can assert on what CallbackHub sent.</summary>
public sealed class RecordedRequest
{
    public required long Id { get; init; }

    public required DateTimeOffset Time { get; init; }

    public required string Method { get; init; }

    /// <summary>Path and query string, e.g. <c>/agentgateway/resource/onlineagent/1001/handshake</c>.</summary>
    public required string Path { get; init; }

    /// <summary>The agent id from the path, when the path names one.</summary>
    public string? AgentId { get; init; }

    /// <summary>Request headers; lookups ignore case, repeated values are joined with ", ".</summary>
    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    public required string Body { get; init; }

    /// <summary>The retcode the simulator answered with (null until the handler has answered, or for unknown routes).</summary>
    public string? Retcode { get; internal set; }
}
