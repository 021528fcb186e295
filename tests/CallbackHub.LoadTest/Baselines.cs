using System.Diagnostics;
using System.Text.Json;
using CallbackHub.Contracts;
using MassTransit;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace CallbackHub.LoadTest;

/// <summary>
/// This machine's own ceilings, measured with the same concurrency as CallbackHub's dispatcher: what a plain
/// MassTransit publisher gets confirmed by RabbitMQ, and how many single-row commits PostgreSQL makes.
/// </summary>
internal static class Baselines
{
    /// <summary>
    /// Confirmed sends of <see cref="AgentEventReceived"/> to a durable queue, <paramref name="concurrency"/> in flight. With
    /// <paramref name="withConsumer"/> a consumer like the load tool's (prefetch 2,000, each message parsed and acknowledged
    /// on its own) takes them off the queue meanwhile, and the rate is what it received: the broker then does the delivery
    /// and acknowledgement work of every leg as well, which the bare ceiling leaves out.
    /// </summary>
    public static async Task<double> PublishCeilingAsync(string amqpUri, int concurrency, TimeSpan duration, bool withConsumer = false)
    {
        // One name, removed before and after: a run killed half way leaves its queue and exchange behind, and the next run
        // clears them (a new name each time left one of each per killed run).
        const string queue = "loadtest-ceiling";
        await DeleteQueueAsync(amqpUri, queue);
        var bus = CreateBus(amqpUri);
        await bus.StartAsync();
        IConnection? consumerConnection = null;
        try
        {
            var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{queue}"));
            await endpoint.Send(Message(0)); // declares the durable queue before the clock starts
            var received = 0L;
            if (withConsumer)
            {
                consumerConnection = await new ConnectionFactory { Uri = new Uri(amqpUri), ClientProvidedName = "callbackhub-loadtest-ceiling-consumer" }.CreateConnectionAsync();
                var channel = await consumerConnection.CreateChannelAsync();
                await channel.BasicQosAsync(0, 2000, false);
                var consumer = new AsyncEventingBasicConsumer(channel);
                consumer.ReceivedAsync += async (_, delivery) =>
                {
                    using (var envelope = JsonDocument.Parse(delivery.Body))
                    {
                        var message = envelope.RootElement.GetProperty("message");
                        _ = message.GetProperty("agentId").GetInt32() + message.GetProperty("sequence").GetInt64();
                    }

                    Interlocked.Increment(ref received);
                    await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false);
                };
                await channel.BasicConsumeAsync(queue, autoAck: false, consumer);
            }

            var sent = 0L;
            var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var start = Stopwatch.GetTimestamp();
            var receivedAtStart = Interlocked.Read(ref received);
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
            {
                while (Stopwatch.GetTimestamp() < stopAt)
                {
                    var message = Message(Interlocked.Increment(ref sent));
                    await endpoint.Send(message, c => c.MessageId = message.EventId);
                }
            }));
            var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            return withConsumer ? (Interlocked.Read(ref received) - receivedAtStart) / elapsed : sent / elapsed;
        }
        finally
        {
            if (consumerConnection is not null)
            {
                await consumerConnection.CloseAsync();
                consumerConnection.Dispose();
            }

            await bus.StopAsync();
            await DeleteQueueAsync(amqpUri, queue);
        }
    }

    /// <summary>Autocommitted single-row INSERTs (a jsonb payload like an event's), <paramref name="concurrency"/> connections.</summary>
    public static async Task<double> CommitCeilingAsync(string connectionString, int concurrency, TimeSpan duration)
    {
        await using var dataSource = new NpgsqlDataSourceBuilder(connectionString) { ConnectionStringBuilder = { MaxPoolSize = concurrency + 2 } }.Build();
        await using (var create = dataSource.CreateCommand(
            "DROP TABLE IF EXISTS loadtest_commit_ceiling; CREATE TABLE loadtest_commit_ceiling (id bigserial PRIMARY KEY, agent_id int NOT NULL, content jsonb, at timestamptz NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        try
        {
            var committed = 0L;
            var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var start = Stopwatch.GetTimestamp();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
            {
                await using var connection = await dataSource.OpenConnectionAsync();
                await using var insert = new NpgsqlCommand("INSERT INTO loadtest_commit_ceiling (agent_id, content, at) VALUES ($1, $2::jsonb, now())", connection);
                insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 1001 + worker });
                insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = """{"caller":"13800138000","called":"71001","callid":"1700001234-1","type":"main"}""" });
                await insert.PrepareAsync();
                while (Stopwatch.GetTimestamp() < stopAt)
                {
                    await insert.ExecuteNonQueryAsync();
                    Interlocked.Increment(ref committed);
                }
            }));
            return committed / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        finally
        {
            await using var drop = dataSource.CreateCommand("DROP TABLE IF EXISTS loadtest_commit_ceiling");
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>A plain MassTransit bus on <paramref name="amqpUri"/> (publisher confirms on, MassTransit's default).</summary>
    public static IBusControl CreateBus(string amqpUri, Action<IRabbitMqBusFactoryConfigurator>? configure = null)
    {
        var uri = new Uri(amqpUri);
        return Bus.Factory.CreateUsingRabbitMq(rabbit =>
        {
            var userInfo = uri.UserInfo.Split(':');
            var vhost = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
            rabbit.Host(uri.Host, (ushort)uri.Port, vhost.Length == 0 ? "/" : vhost, h =>
            {
                h.Username(Uri.UnescapeDataString(userInfo[0]));
                h.Password(Uri.UnescapeDataString(userInfo[1]));
                h.PublisherConfirmation = true; // MassTransit's default, stated: a send completes on the broker's confirm
            });
            configure?.Invoke(rabbit);
        });
    }

    private static AgentEventReceived Message(long n) => new(
        NewId.NextGuid(), 1001 + (int)(n % 1000), "AgentEvent_Ringing", n,
        """{"caller":"13800138000","called":"71001","callid":"1700001234-1","type":"main","feature":"0","mediaAbility":"1"}""",
        DateTimeOffset.UtcNow, DateTimeOffset.UtcNow);

    private static async Task DeleteQueueAsync(string amqpUri, string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(amqpUri) }.CreateConnectionAsync();
        // Deleting what is not there is not an error in RabbitMQ 3.x: no check first.
        await using var channel = await connection.CreateChannelAsync();
        await channel.QueueDeleteAsync(queue);
        await channel.ExchangeDeleteAsync(queue);
    }
}
