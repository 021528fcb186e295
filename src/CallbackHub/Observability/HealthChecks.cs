using CallbackHub.Outbox;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace CallbackHub.Observability;

/// <summary>PostgreSQL answers a query through the service's own connection pool.</summary>
internal sealed class PostgresHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy("PostgreSQL answers.");
        }
        catch (Exception exception) when (exception is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"PostgreSQL does not answer: {exception.Message}");
        }
    }
}

/// <summary>
/// RabbitMQ accepts a connection with the service's credentials. MassTransit's own bus check only follows receive
/// endpoints, and this service has none (it only publishes), so that check stays "Ready" while the broker is down.
/// The answer is kept for <c>Outbox__StatusRefresh</c>, so frequent probes do not open a connection each.
/// </summary>
internal sealed class RabbitMqHealthCheck(IOptions<RabbitMqOptions> rabbitMq, IOptions<OutboxOptions> options, TimeProvider time)
    : IHealthCheck, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (HealthStatus Status, string Description, DateTimeOffset At)? _last;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last is not { } last || time.GetUtcNow() - last.At >= options.Value.StatusRefresh)
            {
                var (healthy, description) = await ConnectAsync(cancellationToken);
                last = (healthy ? HealthStatus.Healthy : context.Registration.FailureStatus, description, time.GetUtcNow());
                _last = last;
            }

            return new HealthCheckResult(last.Status, last.Description);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<(bool Healthy, string Description)> ConnectAsync(CancellationToken cancellationToken)
    {
        if (!RabbitMqAddress.TryParse(rabbitMq.Value.ConnectionString, out var address))
        {
            return (false, "ConnectionStrings__RabbitMq is not an amqp:// URI.");
        }

        var factory = address.ConnectionFactory("callbackhub-health", TimeSpan.FromSeconds(3));
        try
        {
            await using var connection = await factory.CreateConnectionAsync(cancellationToken);
            await connection.CloseAsync(cancellationToken);
            // Host and vhost only: the URI carries the password.
            return (true, $"RabbitMQ at {address.Host}:{address.Port} accepts connections.");
        }
        catch (Exception exception) when (exception is BrokerUnreachableException or IOException or TimeoutException or OperationCanceledException
                                          or RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return (false, $"RabbitMQ at {address.Host}:{address.Port} does not accept connections: {exception.GetBaseException().Message}");
        }
    }

    public void Dispose() => _gate.Dispose();
}
