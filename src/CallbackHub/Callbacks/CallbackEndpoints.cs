using CallbackHub.Gateway;

namespace CallbackHub.Callbacks;

internal static class CallbackEndpoints
{
    /// <summary>The webhook the gateway pushes agent events to (docs/gateway-protocol.md §6).</summary>
    public static IEndpointRouteBuilder MapCallbackEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost(GatewayOptions.CallbackPath, (HttpContext http, PushReceiver receiver) => receiver.HandleAsync(http))
            .ExcludeFromDescription();
        return app;
    }
}
