using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>
/// One agent event as the gateway pushes it. <paramref name="Content"/> may be absent or JSON null,
/// an object, or a bare string (AgentEvent_Call_Release carries the call id as a string).
/// <paramref name="EventGenTime"/> is epoch milliseconds; when null the simulator stamps the queueing
/// time unless Simulator:IncludeEventGenTime is false.
/// </summary>
public sealed record SimulatedEvent(string EventType, JsonElement? Content = null, long? EventGenTime = null)
{
    /// <summary>An event whose content is <paramref name="content"/> serialized as JSON (a string stays a JSON string).</summary>
    public static SimulatedEvent Of(string eventType, object? content = null, long? eventGenTime = null) =>
        new(eventType, content is null ? null : JsonSerializer.SerializeToElement(content), eventGenTime);
}
