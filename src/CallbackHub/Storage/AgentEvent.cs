namespace CallbackHub.Storage;

/// <summary>
/// One pushed event, stored before it is acknowledged and never changed afterwards: the table is append-only (publishing
/// progress is <see cref="AgentStream.PublishedSequence"/>), so it can be partitioned by time and expired later.
/// </summary>
internal sealed class AgentEvent
{
    public Guid EventId { get; set; }
    public int AgentId { get; set; }
    public long Sequence { get; set; }
    public string EventType { get; set; } = "";

    /// <summary>The event's <c>content</c> as JSON (jsonb): null, an object, a string…</summary>
    public string Content { get; set; } = "null";

    public DateTimeOffset? EventGenTime { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
}
