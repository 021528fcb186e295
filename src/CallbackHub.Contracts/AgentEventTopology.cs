namespace CallbackHub.Contracts;

/// <summary>
/// How <see cref="AgentEventReceived"/> is laid out on RabbitMQ, so consumers can bind to a subset.
/// </summary>
/// <remarks>
/// Messages go to the topic exchange <see cref="ExchangeName"/> with the routing key
/// <c>{category}.{eventType}.{agentId}</c>, where the category is the event type up to its first
/// underscore: <c>AgentState.AgentState_Ready.1001</c>, <c>AgentEvent.AgentEvent_Ringing.1001</c>.
/// Bind with <c>AgentState.#</c> for every state event, <c>*.AgentEvent_Ringing.*</c> for one type,
/// <c>#.1001</c> for one agent, or <c>#</c> for everything.
/// </remarks>
public static class AgentEventTopology
{
    /// <summary>The durable topic exchange every agent event is published to.</summary>
    public const string ExchangeName = "callbackhub.agent-events";

    /// <summary>The routing key for an event, as described on <see cref="AgentEventTopology"/>.</summary>
    public static string RoutingKey(string eventType, int agentId)
    {
        // Topic routing splits on '.', so a dot inside an (unknown) event type must not create a new word.
        var type = eventType.Replace('.', '_');
        var underscore = type.IndexOf('_', StringComparison.Ordinal);
        var category = underscore > 0 ? type[..underscore] : type;
        return $"{category}.{type}.{agentId}";
    }
}
