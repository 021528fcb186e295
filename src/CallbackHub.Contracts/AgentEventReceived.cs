using MassTransit;

namespace CallbackHub.Contracts;

/// <summary>
/// One agent event pushed by the CC-Gateway, stored by CallbackHub and republished on RabbitMQ.
/// </summary>
/// <remarks>
/// Delivery is at-least-once: dedupe on <see cref="EventId"/> (also carried as the MassTransit MessageId).
/// Within one agent, <see cref="Sequence"/> increases by exactly one per event, in the order CallbackHub
/// received them; a gap on the consumer side means a message is still to come, a repeat is a redelivery.
/// </remarks>
/// <param name="EventId">Unique, stable id of this event; the same on every redelivery.</param>
/// <param name="AgentId">The agent's work number (101–59999).</param>
/// <param name="EventType">The gateway's event type, e.g. <c>AgentState_Ready</c>; unknown types are forwarded too.</param>
/// <param name="Sequence">Per-agent position, starting at 1, gap-free, in arrival order.</param>
/// <param name="Content">The event's <c>content</c> as raw JSON text: <c>null</c>, an object, a string…</param>
/// <param name="GeneratedAt">The gateway's <c>eventGenTime</c>, when the gateway sent one.</param>
/// <param name="ReceivedAt">When CallbackHub accepted the push that carried this event.</param>
[EntityName(AgentEventTopology.ExchangeName)]
public sealed record AgentEventReceived(
    Guid EventId,
    int AgentId,
    string EventType,
    long Sequence,
    string Content,
    DateTimeOffset? GeneratedAt,
    DateTimeOffset ReceivedAt);
