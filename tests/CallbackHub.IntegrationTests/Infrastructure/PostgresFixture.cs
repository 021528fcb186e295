using Npgsql;
using Testcontainers.PostgreSql;

namespace CallbackHub.IntegrationTests.Infrastructure;

/// <summary>
/// One PostgreSQL container for the whole test run; each test gets its own database from
/// <see cref="CreateDatabaseAsync"/>. The host port is fixed when the fixture starts so that
/// <see cref="StopAsync"/> + <see cref="StartAsync"/> keep every connection string valid.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private const string Username = "postgres";
    private const string Password = "postgres";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    private PostgreSqlContainer? _container;

    public int Port { get; } = ContainerSupport.FreeTcpPort();

    /// <summary>Superuser connection to the <c>postgres</c> database (no pooling: it must survive restarts).</summary>
    public string AdminConnectionString => ConnectionString("postgres", pooling: false);

    private PostgreSqlContainer Container =>
        _container ?? throw new InvalidOperationException("The PostgreSQL fixture has not been initialised.");

    public async Task InitializeAsync()
    {
        _container = await ContainerSupport.StartAsync(
            () => new PostgreSqlBuilder(TestImages.Postgres)
                .WithUsername(Username)
                .WithPassword(Password)
                .WithPortBinding(Port, PostgreSqlBuilder.PostgreSqlPort)
                .Build(),
            "PostgreSQL", TestImages.Postgres, TestImages.PostgresVariable);
        await WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }

    /// <summary>Creates a fresh, empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string? prefix = null)
    {
        var name = $"{Sanitize(prefix ?? "test")}_{Guid.NewGuid():N}";
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name, pooling: true);
    }

    /// <summary>Stops the server (tests use this to see how the service behaves without its database).</summary>
    public async Task StopAsync()
    {
        await Container.StopAsync();
        // Npgsql hands out idle pooled connections without checking them, so a test would not notice the outage.
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Starts the server again on the same address and waits until it accepts connections.</summary>
    public async Task StartAsync()
    {
        await Container.StartAsync();
        await WaitUntilReadyAsync();
        // Connections pooled while the server was down (none should be, but a test may have opened some) are dead.
        NpgsqlConnection.ClearAllPools();
    }

    private Task WaitUntilReadyAsync() =>
        ContainerSupport.WaitUntilAsync("PostgreSQL", async cancellationToken =>
        {
            await using var connection = new NpgsqlConnection(AdminConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(cancellationToken);
        }, ReadyTimeout);

    private string ConnectionString(string database, bool pooling) => new NpgsqlConnectionStringBuilder
    {
        Host = Container.Hostname,
        Port = Port,
        Database = database,
        Username = Username,
        Password = Password,
        Pooling = pooling,
    }.ConnectionString;

    // Database names are identifiers: keep them lower-case ASCII and within PostgreSQL's 63 bytes.
    private static string Sanitize(string prefix)
    {
        var cleaned = new string(prefix.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        return cleaned.Length > 30 ? cleaned[..30] : cleaned;
    }
}
