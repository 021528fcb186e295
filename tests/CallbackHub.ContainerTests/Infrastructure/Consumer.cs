using System.Collections.Concurrent;
using System.Text.Json;
using CallbackHub.Contracts;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace CallbackHub.ContainerTests.Infrastructure;

/// <summary>A downstream consumer: a queue bound to every routing key of the contract's exchange.</summary>
internal sealed class Consumer : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly ConcurrentQueue<AgentEventReceived> _received = new();
    private IConnection? _connection;
    private IChannel? _channel;

    public IReadOnlyList<AgentEventReceived> Received => [.. _received];

    public static async Task<Consumer> StartAsync(string amqpUri)
    {
        var consumer = new Consumer();
        consumer._connection = await new ConnectionFactory { Uri = new Uri(amqpUri) }.CreateConnectionAsync();
        var channel = consumer._channel = await consumer._connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync(AgentEventTopology.ExchangeName, ExchangeType.Topic, durable: true, autoDelete: false);
        var queue = await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true);
        await channel.QueueBindAsync(queue.QueueName, AgentEventTopology.ExchangeName, "#");
        var receiver = new AsyncEventingBasicConsumer(channel);
        receiver.ReceivedAsync += (_, delivery) =>
        {
            // The body is MassTransit's JSON envelope; the event is its "message".
            using var envelope = JsonDocument.Parse(delivery.Body);
            consumer._received.Enqueue(envelope.RootElement.GetProperty("message").Deserialize<AgentEventReceived>(Json)!);
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue.QueueName, autoAck: true, receiver);
        return consumer;
    }

    public async Task<IReadOnlyList<AgentEventReceived>> WaitForAsync(Func<IReadOnlyList<AgentEventReceived>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(Received) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        return Received;
    }

    public async ValueTask DisposeAsync()
    {
        if (_channel is not null)
        {
            await _channel.CloseAsync();
            _channel.Dispose();
        }

        if (_connection is not null)
        {
            await _connection.CloseAsync();
            _connection.Dispose();
        }
    }
}
