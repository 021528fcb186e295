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

    /// <summary>The longest routing key AMQP carries, in UTF-8 bytes.</summary>
    public const int MaxRoutingKeyBytes = 255;

    /// <summary>
    /// The routing key for an event, as described on <see cref="AgentEventTopology"/>. Always publishable: an event type so
    /// long that the key would pass 255 bytes has its words shortened, the type's ending a <c>~</c> and 8 hex digits of a
    /// hash of the full type (the message itself carries the full type), so different long types keep different keys.
    /// </summary>
    public static string RoutingKey(string eventType, int agentId)
    {
        // Topic routing splits on '.', so a dot inside an (unknown) event type must not create a new word.
        var type = eventType.Replace('.', '_');
        var underscore = type.IndexOf('_', StringComparison.Ordinal);
        var category = underscore > 0 ? type[..underscore] : type;
        var agent = agentId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var key = $"{category}.{type}.{agent}";
        if (System.Text.Encoding.UTF8.GetByteCount(key) <= MaxRoutingKeyBytes)
        {
            return key;
        }

        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(eventType)), 0, 4).ToLowerInvariant();
        var words = MaxRoutingKeyBytes - agent.Length - 2;
        category = Shorten(category, Math.Min(64, words / 4), hash);
        type = Shorten(type, words - System.Text.Encoding.UTF8.GetByteCount(category), hash);
        return $"{category}.{type}.{agent}";
    }

    /// <summary><paramref name="word"/> if it fits in <paramref name="maxBytes"/>, else its start (whole characters) + "~" + the hash.</summary>
    private static string Shorten(string word, int maxBytes, string hash)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(word) <= maxBytes)
        {
            return word;
        }

        var budget = maxBytes - 1 - hash.Length;
        var builder = new System.Text.StringBuilder();
        var used = 0;
        foreach (var rune in word.EnumerateRunes())
        {
            if (used + rune.Utf8SequenceLength > budget)
            {
                break;
            }

            builder.Append(rune.ToString());
            used += rune.Utf8SequenceLength;
        }

        return builder.Append('~').Append(hash).ToString();
    }
}
