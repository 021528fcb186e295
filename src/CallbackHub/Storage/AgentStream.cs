namespace CallbackHub.Storage;

/// <summary>
/// Per-agent bookkeeping of the event stream: the last sequence handed out, the fingerprint and length of the last accepted
/// batch (by which a re-sent batch is recognised, alone or with newer events appended), and how far the outbox has published it. Kept apart from the session row so
/// that heartbeats and pushes never wait on each other's row lock.
/// </summary>
internal sealed class AgentStream
{
    public int AgentId { get; set; }
    public long LastSequence { get; set; }
    public byte[]? LastBatchHash { get; set; }
    public DateTimeOffset? LastBatchAt { get; set; }

    /// <summary>How many events the last accepted batch held (its fingerprint covers them all).</summary>
    public int? LastBatchCount { get; set; }

    /// <summary>How many of the last batch's first events were a re-send and not stored again.</summary>
    public int LastBatchSkipped { get; set; }

    /// <summary>Every event up to this sequence is confirmed by RabbitMQ; the ones after it are the agent's outbox backlog.</summary>
    public long PublishedSequence { get; set; }

    /// <summary>Why the event after <see cref="PublishedSequence"/> cannot be published, once it failed too often; null otherwise.</summary>
    public string? PublishError { get; set; }
}
