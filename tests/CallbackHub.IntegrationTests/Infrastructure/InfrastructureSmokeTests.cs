using Npgsql;
using RabbitMQ.Client;

namespace CallbackHub.IntegrationTests.Infrastructure;

/// <summary>Proves the fixtures do what the other integration tests rely on.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class InfrastructureSmokeTests(PostgresFixture postgres, RabbitMqFixture rabbitMq)
{
    [Fact]
    public async Task Created_database_is_empty_and_queryable()
    {
        var connectionString = await postgres.CreateDatabaseAsync("smoke");

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        Assert.StartsWith("smoke_", connection.Database, StringComparison.Ordinal);
        Assert.Equal(0L, await ScalarAsync<long>(connection, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"));
        await ExecuteAsync(connection, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)");
        Assert.Equal(42, await ScalarAsync<int>(connection, "SELECT x FROM t"));
    }

    [Fact]
    public async Task Database_connection_string_survives_stop_and_start()
    {
        var connectionString = await postgres.CreateDatabaseAsync("restart");
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await ExecuteAsync(connection, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
        }

        await postgres.StopAsync();
        try
        {
            await using var down = new NpgsqlConnection(connectionString);
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => down.OpenAsync());
        }
        finally
        {
            await postgres.StartAsync();
        }

        await using var again = new NpgsqlConnection(connectionString);
        await again.OpenAsync();
        Assert.Equal(7, await ScalarAsync<int>(again, "SELECT x FROM t"));
    }

    [Fact]
    public async Task Created_virtual_host_accepts_a_connection()
    {
        var uri = await rabbitMq.CreateVirtualHostAsync("smoke");
        var parsed = new Uri(uri);
        Assert.Equal(rabbitMq.Port, parsed.Port);
        Assert.StartsWith("smoke-", Uri.UnescapeDataString(parsed.AbsolutePath.TrimStart('/')), StringComparison.Ordinal);

        await using var connection = await new ConnectionFactory { Uri = parsed }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var queue = await channel.QueueDeclareAsync();
        await channel.BasicPublishAsync(string.Empty, queue.QueueName, "hello"u8.ToArray());
        var message = await channel.BasicGetAsync(queue.QueueName, autoAck: true);

        Assert.NotNull(message);
        Assert.Equal("hello"u8.ToArray(), message.Body.ToArray());
    }

    [Fact]
    public async Task Virtual_host_uri_survives_stop_and_start()
    {
        var uri = await rabbitMq.CreateVirtualHostAsync("restart");
        var factory = new ConnectionFactory { Uri = new Uri(uri) };
        await using (await factory.CreateConnectionAsync())
        {
        }

        await rabbitMq.StopAsync();
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => factory.CreateConnectionAsync());
        }
        finally
        {
            await rabbitMq.StartAsync();
        }

        await using var again = await factory.CreateConnectionAsync();
        Assert.True(again.IsOpen);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
