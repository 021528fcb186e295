using CallbackHub.Hosting;

namespace CallbackHub.Agents;

internal static class AgentsRegistration
{
    public static IServiceCollection AddAgents(this IServiceCollection services)
    {
        services.AddValidatedOptions<ManagementOptions>(ManagementOptions.Section, ManagementOptions.Validate);
        services.AddValidatedOptions<SessionKeepingOptions>(SessionKeepingOptions.Section, SessionKeepingOptions.Validate);
        services.AddValidatedOptions<RosterOptions>(RosterOptions.Validate)
            .Configure<IConfiguration>((o, configuration) =>
            {
                configuration.GetSection("Agents").Bind(o.Agents);
                o.File = configuration["Roster:File"];
                o.LoadFile();
            });
        services.AddSingleton<Roster>();
        services.AddSingleton<Credentials>();
        services.AddSingleton<SessionTokens>();
        services.AddSingleton<TokenLookup>();
        services.AddHostedService<TokenChangeFeed>();
        services.AddSingleton<SessionDatabaseGate>();
        services.AddSingleton<SessionLeases>();
        services.AddScoped<SessionStore>();
        services.AddScoped<SignIns>();
        services.AddScoped<SessionKeeping>();
        services.AddSingleton<SessionKeeper>();
        services.AddHostedService(provider => provider.GetRequiredService<SessionKeeper>());
        return services;
    }
}
