using CallbackHub.Hosting;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;

namespace CallbackHub.Gateway;

internal static class GatewayRegistration
{
    public static IServiceCollection AddGatewayClient(this IServiceCollection services)
    {
        services.AddValidatedOptions<GatewayOptions>(GatewayOptions.Section, GatewayOptions.Validate);
        services.AddHttpClient<GatewayClient>((provider, http) =>
            {
                var options = provider.GetRequiredService<IOptions<GatewayOptions>>().Value;
                http.BaseAddress = new Uri(options.BaseUrl.TrimEnd('/') + "/");
                // The resilience pipeline below owns time limits.
                http.Timeout = Timeout.InfiniteTimeSpan;
            })
            .AddStandardResilienceHandler()
            .Configure((HttpStandardResilienceOptions resilience, IServiceProvider provider) =>
            {
                var timeout = provider.GetRequiredService<IOptions<GatewayOptions>>().Value.Timeout;
                // Sign-in, heartbeat and sign-out change the gateway's state: never repeat them blindly (a repeated
                // sign-in that had in fact succeeded would be answered "already signed in").
                resilience.Retry.DisableForUnsafeHttpMethods();
                resilience.AttemptTimeout.Timeout = timeout;
                resilience.TotalRequestTimeout.Timeout = timeout;
                resilience.CircuitBreaker.SamplingDuration = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(30).Ticks, timeout.Ticks * 2));
            });
        return services;
    }
}
