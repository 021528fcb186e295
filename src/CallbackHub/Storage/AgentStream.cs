namespace CallbackHub.Storage;

/// <summary>
/// Per-agent bookkeeping of the event stream: the last sequence handed out, and the fingerprint of the last
/// accepted batch, by which a re-sent batch is recognised. Kept apart from the session row so that
/// heartbeats and pushes never wait on each other's row lock.
/// </summary>
internal sealed class AgentStream
{
    public int AgentId { get; set; }
    public long LastSequence { get; set; }
    public byte[]? LastBatchHash { get; set; }
    public DateTimeOffset? LastBatchAt { get; set; }
}
