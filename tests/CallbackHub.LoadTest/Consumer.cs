using System.Diagnostics;
using System.Text.Json;
using CallbackHub.Contracts;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace CallbackHub.LoadTest;

/// <summary>
/// A downstream consumer: a durable queue (like a real subscriber's, so the broker does the same disk work)
/// bound with <c>#</c> to CallbackHub's exchange. Each arrival is matched to the event pushed at that
/// position of the agent's stream (see <see cref="AgentLedger"/>).
/// </summary>
internal sealed class Consumer : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly string _queue;
    private readonly Dictionary<int, AgentLedger> _agents;
    private readonly RunCounters _counters;
    private long _received;
    private bool _detached;

    private Consumer(IConnection connection, IChannel channel, string queue, Dictionary<int, AgentLedger> agents, RunCounters counters)
    {
        _connection = connection;
        _channel = channel;
        _queue = queue;
        _agents = agents;
        _counters = counters;
    }

    public long ReceivedCount => Interlocked.Read(ref _received);

    public static async Task<Consumer> StartAsync(string amqpUri, string queue, Dictionary<int, AgentLedger> agents, RunCounters counters)
    {
        var connection = await new ConnectionFactory { Uri = new Uri(amqpUri), ClientProvidedName = "callbackhub-loadtest-consumer" }.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync(AgentEventTopology.ExchangeName, ExchangeType.Topic, durable: true, autoDelete: false);
        // Deleted by the broker once unused for a minute: a run that was killed leaves no queue bound to "#" behind, which
        // would take a copy of every message in later runs (with no consumer, doubling the broker's work per message).
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-expires"] = 60_000 });
        await channel.QueueBindAsync(queue, AgentEventTopology.ExchangeName, "#");
        await channel.BasicQosAsync(0, 2000, false);
        var consumer = new Consumer(connection, channel, queue, agents, counters);
        var basic = new AsyncEventingBasicConsumer(channel);
        basic.ReceivedAsync += async (_, delivery) =>
        {
            consumer.OnReceived(delivery.Body.Span);
            await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false);
        };
        await channel.BasicConsumeAsync(queue, autoAck: false, basic);
        return consumer;
    }

    private void OnReceived(ReadOnlySpan<byte> body)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _received);
        var reader = new Utf8JsonReader(body);
        using var envelope = JsonDocument.ParseValue(ref reader);
        var message = envelope.RootElement.GetProperty("message");
        var agentId = message.GetProperty("agentId").GetInt32();
        var sequence = message.GetProperty("sequence").GetInt64();
        if (!_agents.TryGetValue(agentId, out var agent))
        {
            Interlocked.Increment(ref _counters.Unexpected);
            return;
        }

        lock (agent)
        {
            var index = sequence - agent.BaseSequence - 1;
            if (index < 0)
            {
                // The agent's sign-in events, published before the run.
                Interlocked.Increment(ref _counters.PreRun);
                return;
            }

            if (index >= agent.Sent.Count)
            {
                Interlocked.Increment(ref _counters.Unexpected);
                return;
            }

            var sent = agent.Sent[(int)index];
            if (sent.Received++ > 0)
            {
                Interlocked.Increment(ref _counters.Duplicates);
                return;
            }

            if (sequence < agent.LastSequenceSeen)
            {
                Interlocked.Increment(ref _counters.OrderViolations);
            }

            agent.LastSequenceSeen = Math.Max(agent.LastSequenceSeen, sequence);
            sent.ReceivedAt = now;
            sent.ReceivedType = message.GetProperty("eventType").GetString();
            sent.ReceivedContent = message.GetProperty("content").GetString();
        }
    }

    /// <summary>Closes the connection but keeps the durable queue and what it holds, to consume it again later.</summary>
    public async Task DetachAsync()
    {
        _detached = true;
        try
        {
            await _channel.CloseAsync();
            await _connection.CloseAsync();
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.RabbitMQClientException or IOException or ObjectDisposedException)
        {
            // The broker is going away anyway.
        }

        _channel.Dispose();
        _connection.Dispose();
    }

    /// <summary>
    /// The agents' sign-in events reach the broker before this queue is bound, so CallbackHub keeps them in its unrouted queue:
    /// emptied after each leg, or repeated runs fill it.
    /// </summary>
    private async Task PurgeUnroutedAsync()
    {
        try
        {
            await using var channel = await _connection.CreateChannelAsync();
            await channel.QueuePurgeAsync("callbackhub.unrouted");
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            // No such queue (the plain receiver's leg, or Outbox__KeepUnrouted off).
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_detached)
        {
            return;
        }

        await _channel.QueueDeleteAsync(_queue);
        await PurgeUnroutedAsync();
        await _channel.CloseAsync();
        await _connection.CloseAsync();
        _channel.Dispose();
        _connection.Dispose();
    }
}
