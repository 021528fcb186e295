using CallbackHub.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Storage;

internal static class StorageRegistration
{
    public static IServiceCollection AddStorage(this IServiceCollection services)
    {
        services.AddValidatedOptions<DatabaseOptions>(DatabaseOptions.Section, DatabaseOptions.Validate)
            .Configure<IConfiguration>((o, configuration) => o.ConnectionString = configuration.GetConnectionString("Postgres") ?? "");
        // One data source (one connection pool) for EF Core and the hand-written hot paths alike.
        services.AddSingleton(provider =>
            new NpgsqlDataSourceBuilder(DatabaseOptions.WithPoolBound(provider.GetRequiredService<IOptions<DatabaseOptions>>().Value.ConnectionString))
                .UseLoggerFactory(provider.GetRequiredService<ILoggerFactory>())
                .Build());
        services.AddDbContext<CallbackHubDbContext>((provider, db) => db.UseNpgsql(provider.GetRequiredService<NpgsqlDataSource>()));
        services.AddSingleton<DatabaseInitializer>();
        services.AddHostedService(provider => provider.GetRequiredService<DatabaseInitializer>());
        services.AddHostedService<StalledTransactionReaper>();
        return services;
    }
}
