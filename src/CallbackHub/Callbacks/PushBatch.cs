namespace CallbackHub.Callbacks;

/// <summary>A validated push: one agent's events, oldest first, and the fingerprint that identifies a re-send.</summary>
internal sealed record PushBatch(int AgentId, IReadOnlyList<PushedEvent> Events, byte[] Fingerprint);

/// <summary>One item of a push's <c>eventList</c>; <see cref="ContentJson"/> is the content as JSON text.</summary>
internal sealed record PushedEvent(string EventType, DateTimeOffset? GeneratedAt, string ContentJson);
