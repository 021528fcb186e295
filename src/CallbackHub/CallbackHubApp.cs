using CallbackHub.Agents;
using CallbackHub.Callbacks;
using CallbackHub.Gateway;
using CallbackHub.Hosting;
using CallbackHub.Observability;
using CallbackHub.Publishing;
using CallbackHub.Storage;

namespace CallbackHub;

/// <summary>The composition root: everything is read from configuration (appsettings, environment, arguments).</summary>
public static class CallbackHubApp
{
    /// <param name="configure">Lets tests and tools adjust the builder (configuration, services) before it is built.</param>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        var services = builder.Services;

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<CallbackHubMetrics>();
        services.AddProblemDetails();
        services.AddStorage();
        services.AddAgentEventPublishing();
        services.AddGatewayClient();

        services.AddValidatedOptions<CallbackOptions>(CallbackOptions.Section, CallbackOptions.Validate);
        services.AddSingleton<PushAuthenticator>();
        services.AddSingleton<PushReceiver>();

        services.AddValidatedOptions<ManagementOptions>(ManagementOptions.Section, ManagementOptions.Validate);
        services.AddValidatedOptions<SessionKeepingOptions>(SessionKeepingOptions.Section, SessionKeepingOptions.Validate);
        services.AddValidatedOptions<RosterOptions>(RosterOptions.Validate)
            .Configure<IConfiguration>((o, configuration) => configuration.GetSection("Agents").Bind(o.Agents));
        services.AddSingleton<Credentials>();
        services.AddSingleton<PendingTokens>();
        services.AddScoped<AgentSessions>();
        services.AddSingleton<SessionKeeper>();
        services.AddHostedService(provider => provider.GetRequiredService<SessionKeeper>());
        services.AddObservability();

        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapCallbackEndpoints();
        app.MapAgentEndpoints();
        app.MapObservability();
        return app;
    }
}
