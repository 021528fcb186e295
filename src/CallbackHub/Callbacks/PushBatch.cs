namespace CallbackHub.Callbacks;

/// <summary>
/// A validated push: one agent's events, oldest first, and the fingerprints that identify a re-send — one per prefix of the
/// batch (<see cref="PrefixHashes"/>[k − 1] covers the first k events), so a retry with events appended is recognised too.
/// </summary>
internal sealed record PushBatch(int AgentId, IReadOnlyList<PushedEvent> Events, byte[][] PrefixHashes)
{
    /// <summary>The fingerprint of the whole batch.</summary>
    public byte[] Fingerprint => PrefixHashes[^1];
}

/// <summary>One item of a push's <c>eventList</c>; <see cref="ContentJson"/> is the content as JSON text.</summary>
internal sealed record PushedEvent(string EventType, DateTimeOffset? GeneratedAt, string ContentJson);
