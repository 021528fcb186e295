namespace CallbackHub.Storage;

/// <summary>One pushed event, stored before it is acknowledged, and the outbox row it is published from.</summary>
internal sealed class AgentEvent
{
    public long Id { get; set; }
    public Guid EventId { get; set; }
    public int AgentId { get; set; }
    public long Sequence { get; set; }
    public string EventType { get; set; } = "";

    /// <summary>The event's <c>content</c> as JSON (jsonb): null, an object, a string…</summary>
    public string Content { get; set; } = "null";

    public DateTimeOffset? EventGenTime { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }

    /// <summary>Set once the broker confirmed the message; null rows are the outbox backlog.</summary>
    public DateTimeOffset? PublishedAt { get; set; }
}
