using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Storage;

/// <summary>
/// Applies the EF Core migrations before anything else starts (before the web server listens), waiting for
/// PostgreSQL up to <see cref="DatabaseOptions.StartupTimeout"/> — in a compose file it may start later than us.
/// </summary>
internal sealed partial class DatabaseInitializer(
    IServiceScopeFactory scopes, IOptions<DatabaseOptions> options, ILogger<DatabaseInitializer> logger) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.MigrateOnStart)
        {
            return;
        }

        var deadline = DateTimeOffset.UtcNow + options.Value.StartupTimeout;
        while (true)
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<CallbackHubDbContext>().Database.MigrateAsync(cancellationToken);
                LogMigrated();
                return;
            }
            catch (NpgsqlException e) when (e.IsTransient && DateTimeOffset.UtcNow < deadline)
            {
                LogWaiting(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Database schema is up to date")]
    private partial void LogMigrated();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Waiting for PostgreSQL: {Error}")]
    private partial void LogWaiting(string error);
}
