using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Storage;

/// <summary>
/// Before anything else starts (before the web server listens): waits for PostgreSQL up to
/// <see cref="DatabaseOptions.StartupTimeout"/> — in a compose file it may start later than us — and applies the EF Core
/// migrations, or checks that a DBA did. What stops the start is said in one sentence naming the setting to fix.
/// </summary>
internal sealed partial class DatabaseInitializer(
    IServiceScopeFactory scopes, NpgsqlDataSource dataSource, IOptions<DatabaseOptions> options, ILogger<DatabaseInitializer> logger) : IHostedLifecycleService
{
    private const string Key = "ConnectionStrings__Postgres";
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(2);

    private const string CreateHistoryTableSql = """
        CREATE TABLE IF NOT EXISTS "__EFMigrationsHistory" (
            "MigrationId" character varying(150) NOT NULL,
            "ProductVersion" character varying(32) NOT NULL,
            CONSTRAINT "PK___EFMigrationsHistory" PRIMARY KEY ("MigrationId"))
        """;

    private bool _prepared;

    /// <summary>The reasons the service cannot use the database; empty once the schema is up to date.</summary>
    public async Task<IReadOnlyList<string>> PrepareAsync(CancellationToken cancellationToken)
    {
        if (_prepared)
        {
            return [];
        }

        var o = options.Value;
        var target = Describe(o.ConnectionString);
        var deadline = DateTimeOffset.UtcNow + o.StartupTimeout;
        while (true)
        {
            try
            {
                // Npgsql first: it says plainly what is wrong with the connection (EF Core would log it as an error and try
                // to create a missing database).
                await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
                {
                    if (o.MigrateOnStart)
                    {
                        // EF Core's own statement: made here, EF Core's first look at the history of a new database
                        // finds an empty table instead of logging a failed query as an error.
                        await using var history = new NpgsqlCommand(CreateHistoryTableSql, connection);
                        await history.ExecuteNonQueryAsync(cancellationToken);
                    }
                }

                await using var scope = scopes.CreateAsyncScope();
                var database = scope.ServiceProvider.GetRequiredService<CallbackHubDbContext>().Database;
                if (o.MigrateOnStart)
                {
                    await database.MigrateAsync(cancellationToken);
                    LogMigrated();
                }
                else if ((await database.GetPendingMigrationsAsync(cancellationToken)).ToList() is { Count: > 0 } pending)
                {
                    return [$"The database {target} lacks {pending.Count} schema migration(s) (the newest: {pending[^1]}) and "
                             + "Database__MigrateOnStart is false: run migrations/idempotent.sql, or turn Database__MigrateOnStart on."];
                }

                _prepared = true;
                return [];
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification)
            {
                return [$"{Key}: PostgreSQL at {target} refused the login ({e.MessageText}); check the user name and password."];
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidCatalogName)
            {
                return [$"{Key}: {e.MessageText} at {target}; create it, or name an existing one with Database=…"];
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                return [$"{Key}: the user may not create or change CallbackHub's tables at {target} ({e.MessageText}); grant it the rights "
                        + "(e.g. make it the database's owner), or set Database__MigrateOnStart=false and have a DBA run migrations/idempotent.sql."];
            }
            catch (NpgsqlException e) when (e.IsTransient && DateTimeOffset.UtcNow + RetryDelay < deadline)
            {
                LogWaiting(target, e.GetBaseException().Message);
                await Task.Delay(RetryDelay, cancellationToken);
            }
            catch (NpgsqlException e) when (e.IsTransient)
            {
                return [$"{Key}: PostgreSQL at {target} did not answer within Database__StartupTimeout ({o.StartupTimeout}): {e.GetBaseException().Message}"];
            }
            catch (NpgsqlException e)
            {
                return [$"{Key}: PostgreSQL at {target} cannot be used: {e.GetBaseException().Message}"];
            }
        }
    }

    /// <summary>Host, port, database and user — never the password.</summary>
    private static string Describe(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{builder.Host}:{builder.Port} (database '{builder.Database ?? builder.Username}', user '{builder.Username}')";
    }

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var problems = await PrepareAsync(cancellationToken);
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(Hosting.StartupFailure.Describe(problems));
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Database schema is up to date")]
    private partial void LogMigrated();

    [LoggerMessage(Level = LogLevel.Information, Message = "Waiting for PostgreSQL at {Target}: {Error}")]
    private partial void LogWaiting(string target, string error);
}
