using CallbackHub.GatewaySimulator.Agents;
using CallbackHub.GatewaySimulator.Control;
using CallbackHub.GatewaySimulator.Gateway;
using CallbackHub.GatewaySimulator.Play;
using CallbackHub.GatewaySimulator.Pushing;
using CallbackHub.GatewaySimulator.Recording;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator;

/// <summary>Composition root of the simulator, shared by Program.cs, docker and in-process tests.</summary>
public static class SimulatorApp
{
    /// <summary>
    /// Builds (does not start) the simulator. <paramref name="configure"/> runs after the simulator's own
    /// registrations, so it can add configuration or replace services (e.g. a FakeTimeProvider as TimeProvider).
    /// </summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        UseOwnSettingsFiles(builder.Configuration, builder.Environment.EnvironmentName);
        AddSimulator(builder.Services, builder.Configuration);
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseMiddleware<RequestRecordingMiddleware>();
        app.MapGatewayEndpoints();
        app.MapControlEndpoints();
        return app;
    }

    private static void AddSimulator(IServiceCollection services, ConfigurationManager configuration)
    {
        services.AddOptions<SimulatorOptions>().Bind(configuration.GetSection(SimulatorOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SimulatorOptions>, SimulatorOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new BoundedLog<RecordedRequest>(Recorded(sp)));
        services.AddSingleton(sp => new BoundedLog<PushAttempt>(Recorded(sp)));
        services.AddSingleton<AgentDirectory>();
        services.AddSingleton<Switchboard>();
        services.AddSingleton<HeartbeatGaps>();
        services.AddSingleton<AgentCalls>();
        services.AddSingleton<HeartbeatMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<HeartbeatMonitor>());
        services.AddSingleton<PushSender>();
        services.AddSingleton<PushDelivery>();
        services.AddSingleton<AgentLifecycle>();
        services.AddSingleton<AgentDayPlayer>();
        services.AddHostedService(sp => sp.GetRequiredService<AgentDayPlayer>());
        services.AddSingleton(sp => new GatewaySimulatorState(
            sp.GetRequiredService<AgentDirectory>(),
            sp.GetRequiredService<AgentLifecycle>(),
            sp.GetRequiredService<PushDelivery>(),
            sp.GetRequiredService<AgentDayPlayer>(),
            sp.GetRequiredService<Switchboard>(),
            sp.GetRequiredService<HeartbeatGaps>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<BoundedLog<RecordedRequest>>(),
            sp.GetRequiredService<BoundedLog<PushAttempt>>()));

        services.AddHttpClient(PushSender.ClientName)
            .ConfigureHttpClient((sp, client) => client.Timeout = Options(sp).PushTimeout)
            .ConfigurePrimaryHttpMessageHandler(sp =>
            {
                var handler = new SocketsHttpHandler { UseCookies = false, PooledConnectionLifetime = TimeSpan.FromMinutes(2) };
                handler.SslOptions.RemoteCertificateValidationCallback = CallbackCertificates.CreateValidator(Options(sp));
                return handler;
            })
            // One log line per push would drown a load test; the push log keeps every attempt instead.
            .RemoveAllLoggers();
    }

    /// <summary>
    /// The simulator often runs inside another application's test process, whose appsettings.json
    /// (Kestrel endpoints, connection strings) must not configure it. It reads gatewaysimulator.json instead.
    /// </summary>
    private static void UseOwnSettingsFiles(ConfigurationManager configuration, string environmentName)
    {
        var appSettings = configuration.Sources
            .OfType<JsonConfigurationSource>()
            .Where(s => s.Path?.StartsWith("appsettings", StringComparison.OrdinalIgnoreCase) == true)
            .ToList();
        var position = appSettings.Count > 0 ? configuration.Sources.IndexOf(appSettings[0]) : 0;
        foreach (var source in appSettings)
        {
            configuration.Sources.Remove(source);
        }

        configuration.Sources.Insert(position, JsonFile("gatewaysimulator.json"));
        configuration.Sources.Insert(position + 1, JsonFile($"gatewaysimulator.{environmentName}.json"));
    }

    private static JsonConfigurationSource JsonFile(string path)
    {
        var source = new JsonConfigurationSource { Path = path, Optional = true, ReloadOnChange = false };
        source.ResolveFileProvider();
        return source;
    }

    private static SimulatorOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<SimulatorOptions>>().Value;

    private static int Recorded(IServiceProvider services) => Options(services).MaxRecorded;
}
