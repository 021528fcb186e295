using System.Collections.Concurrent;
using System.Text.Json;
using CallbackHub.Contracts;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>A downstream consumer: a queue bound to the contract's exchange, recording what arrives.</summary>
internal sealed class QueueProbe : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly ConcurrentQueue<ReceivedEvent> _received = new();

    private QueueProbe(IConnection connection, IChannel channel)
    {
        _connection = connection;
        _channel = channel;
    }

    public IReadOnlyList<ReceivedEvent> Received => [.. _received];

    /// <param name="queueName">A durable named queue (survives a broker restart) when given; else a temporary one.</param>
    public static async Task<QueueProbe> StartAsync(string amqpUri, string bindingKey = "#", string? queueName = null)
    {
        var connection = await new ConnectionFactory { Uri = new Uri(amqpUri) }.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync(AgentEventTopology.ExchangeName, ExchangeType.Topic, durable: true, autoDelete: false);
        var durable = queueName is not null;
        var queue = await channel.QueueDeclareAsync(queueName ?? "", durable, exclusive: !durable, autoDelete: !durable);
        await channel.QueueBindAsync(queue.QueueName, AgentEventTopology.ExchangeName, bindingKey);

        var probe = new QueueProbe(connection, channel);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            probe._received.Enqueue(ReceivedEvent.Parse(delivery.Body.Span, delivery.RoutingKey));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue.QueueName, autoAck: true, consumer);
        return probe;
    }

    /// <summary>Waits until at least <paramref name="count"/> messages arrived (or the time is up) and returns them all.</summary>
    public async Task<IReadOnlyList<ReceivedEvent>> WaitForAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (_received.Count < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(25);
        }

        return Received;
    }

    public async ValueTask DisposeAsync()
    {
        await _channel.CloseAsync();
        await _connection.CloseAsync();
        _channel.Dispose();
        _connection.Dispose();
    }
}

/// <summary>One <see cref="AgentEventReceived"/> as read off the wire (the MassTransit JSON envelope).</summary>
internal sealed record ReceivedEvent(AgentEventReceived Message, string? MessageId, string RoutingKey)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static ReceivedEvent Parse(ReadOnlySpan<byte> body, string routingKey)
    {
        using var envelope = JsonDocument.Parse(body.ToArray());
        var message = envelope.RootElement.GetProperty("message").Deserialize<AgentEventReceived>(Json)!;
        var messageId = envelope.RootElement.TryGetProperty("messageId", out var id) ? id.GetString() : null;
        return new ReceivedEvent(message, messageId, routingKey);
    }
}
