using CallbackHub.GatewaySimulator.Agents;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>An event waiting for delivery, with the session whose callback, Guid and token it goes out with.</summary>
internal sealed record QueuedEvent(AgentSession Session, SimulatedEvent Event);
