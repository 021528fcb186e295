using Microsoft.Extensions.Options;

namespace CallbackHub.Gateway;

/// <summary>
/// Bounds the calls to the gateway in flight from this instance (<see cref="GatewayOptions.MaxConcurrentCalls"/>),
/// whoever makes them: the keeper's heartbeats, the roster's sign-ins, the API. One per instance.
/// </summary>
internal sealed class GatewayCallLimit(IOptions<GatewayOptions> options) : Hosting.ConcurrencyLimit(options.Value.MaxConcurrentCalls);
