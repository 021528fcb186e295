using System.Diagnostics;
using System.Threading.Channels;
using CallbackHub.Contracts;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace CallbackHub.Outbox;

internal enum PublishResult
{
    /// <summary>The broker confirmed it and routed it to at least one queue (or it was not published mandatory).</summary>
    Confirmed,

    /// <summary>The broker confirmed it but no queue was bound to take it (basic.return, then basic.ack).</summary>
    Returned,

    /// <summary>The broker refused it (basic.nack).</summary>
    Nacked,

    /// <summary>Its channel or connection closed, or the confirm did not come in time: it may or may not have arrived.</summary>
    Failed,
}

/// <summary>One message handed to the broker; <see cref="Generation"/> tells the dispatcher whether its outcome still matters.</summary>
internal sealed class PublishItem
{
    public required int AgentId { get; init; }
    public required long Sequence { get; init; }
    public required long Generation { get; init; }
    public required string MessageId { get; init; }
    public required string Exchange { get; init; }
    public required string RoutingKey { get; init; }
    public required byte[] Body { get; init; }
    public required bool Mandatory { get; init; }

    /// <summary>A copy of a returned message, sent to the unrouted queue.</summary>
    public bool IsDivert { get; init; }

    /// <summary>
    /// A <see cref="Stopwatch"/> timestamp: the end of the partition's lease as this instance trusts it. Past it the message
    /// is not sent any more (it fails): after a freeze, another instance may publish the partition by now.
    /// </summary>
    public required long ValidUntil { get; init; }

    internal volatile bool Returned;
    internal long SentAt;
    internal long ConfirmedAt;
    private int _finished;

    /// <summary>True the first time only: an item's outcome is reported once, whichever failure path sees it first.</summary>
    internal bool TryFinish() => Interlocked.Exchange(ref _finished, 1) == 0;

    /// <summary>The broker closed the channel while this was its oldest unconfirmed message: probably the message it refused.</summary>
    internal bool Suspect;
}

/// <summary>
/// The outbox's RabbitMQ connection, with RabbitMQ.Client directly: publisher confirms tracked asynchronously, many messages
/// in flight per channel. An agent always goes to the same channel (agent id mod <see cref="OutboxOptions.Channels"/>) and a
/// channel's messages reach the broker in the order they are sent, so each agent's order on the wire is its sequence order.
/// When a channel fails, every later message of an agent that had one failing there is failed too rather than sent on the
/// next channel (it would overtake the failed one). Outcomes are reported to <see cref="Completed"/>, from the client's threads.
/// </summary>
internal sealed partial class OutboxBroker(
    IOptions<RabbitMqOptions> rabbitMq, IOptions<OutboxOptions> options, ILogger<OutboxBroker> logger) : IAsyncDisposable
{
    private IConnection? _connection;
    private BrokerLane[] _lanes = [];
    private int _timeoutStreak;

    /// <summary>Called once per sent item with its outcome and, for a failure, why.</summary>
    public Action<PublishItem, PublishResult, string?> Completed { get; set; } = (_, _, _) => { };

    public bool IsOpen => _connection is { IsOpen: true };

    /// <summary>Messages sent and not yet confirmed, refused or failed.</summary>
    public int InFlight => _lanes.Sum(l => l.Pending);

    public MessageEnvelope? Envelope { get; private set; }

    /// <summary>Connects, declares the exchange (and the unrouted queue) and opens the channels.</summary>
    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        await CloseAsync();
        if (!RabbitMqAddress.TryParse(rabbitMq.Value.ConnectionString, out var address))
        {
            throw new InvalidOperationException("ConnectionStrings__RabbitMq must be an absolute amqp:// or amqps:// URI.");
        }

        var factory = address.ConnectionFactory("callbackhub-outbox", TimeSpan.FromSeconds(5));
        // Recovery is ours: on any loss every unconfirmed message is republished from PostgreSQL.
        factory.AutomaticRecoveryEnabled = false;
        factory.TopologyRecoveryEnabled = false;
        factory.RequestedHeartbeat = TimeSpan.FromSeconds(10);
        if (options.Value.CoalesceWrites)
        {
            factory.SocketFactory = CoalescingSocket.Create;
        }

        var connection = await factory.CreateConnectionAsync(cancellationToken);
        try
        {
            await using (var setup = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
            {
                await setup.ExchangeDeclareAsync(AgentEventTopology.ExchangeName, ExchangeType.Topic, durable: true, autoDelete: false, cancellationToken: cancellationToken);
                if (options.Value.KeepUnrouted)
                {
                    await setup.QueueDeclareAsync(options.Value.UnroutedQueue, durable: true, exclusive: false, autoDelete: false, cancellationToken: cancellationToken);
                }
            }

            var lanes = new BrokerLane[options.Value.Channels];
            for (var i = 0; i < lanes.Length; i++)
            {
                lanes[i] = new BrokerLane(this, connection, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await lanes[i].OpenAsync(cancellationToken);
            }

            connection.ConnectionShutdownAsync += (_, e) =>
            {
                if (e.Initiator != ShutdownInitiator.Application)
                {
                    LogConnectionLost(e.ReplyText);
                }

                foreach (var lane in lanes)
                {
                    lane.FailAll($"the connection closed ({e.ReplyText})");
                }

                return Task.CompletedTask;
            };
            Envelope = new MessageEnvelope(address.Host, address.VirtualHost);
            _lanes = lanes;
            _connection = connection;
            LogConnected(address.Host, address.Port, lanes.Length);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public void Send(PublishItem item)
    {
        var lanes = _lanes;
        lanes[item.AgentId % lanes.Length].Enqueue(item);
    }

    /// <summary>
    /// A confirm overdue past the publish timeout: the connection is dropped (every unconfirmed message fails and is
    /// republished after reconnecting). The timeout doubles with each such drop in a row (up to 8×), so a broker that is
    /// slow rather than gone is given longer instead of collecting a copy per timeout.
    /// </summary>
    public async Task<bool> DropIfOverdueAsync()
    {
        var timeout = options.Value.PublishTimeout * Math.Pow(2, Math.Min(_timeoutStreak, 3));
        var oldest = _lanes.Select(l => l.OldestSentAt).Where(t => t > 0).DefaultIfEmpty(0).Min();
        if (oldest == 0 || Stopwatch.GetElapsedTime(oldest) <= timeout || _connection is not { } connection)
        {
            return false;
        }

        _timeoutStreak++;
        LogConfirmTimeout(timeout.TotalSeconds);
        foreach (var lane in _lanes)
        {
            lane.FailAll($"no confirm within {timeout.TotalSeconds:0.#} s");
        }

        _connection = null;
        await connection.AbortAsync(TimeSpan.FromSeconds(1));
        await connection.DisposeAsync();
        return true;
    }

    internal void OnConfirmed(PublishItem item, PublishResult result)
    {
        item.ConfirmedAt = Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(item.SentAt) < options.Value.PublishTimeout)
        {
            _timeoutStreak = 0;
        }

        Complete(item, result, null);
    }

    /// <summary>Reports an item's outcome, once.</summary>
    internal void Complete(PublishItem item, PublishResult result, string? reason)
    {
        if (item.TryFinish())
        {
            Completed(item, result, reason);
        }
    }

    public async Task CloseAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            try
            {
                await connection.CloseAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Closing a broken connection fails; it is gone either way.
            }

            await connection.DisposeAsync();
        }

        foreach (var lane in _lanes)
        {
            lane.FailAll("the publisher closed");
        }
    }

    public async ValueTask DisposeAsync() => await CloseAsync();

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox connected to RabbitMQ at {Host}:{Port} with {Channels} channels")]
    private partial void LogConnected(string host, int port, int channels);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox lost its RabbitMQ connection ({Reason}); unconfirmed events are republished after reconnecting")]
    private partial void LogConnectionLost(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A broker confirm is overdue ({Timeout} s); dropping the connection, unconfirmed events are republished")]
    private partial void LogConfirmTimeout(double timeout);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox channel {Lane} closed ({Reason}); {Count} unconfirmed messages are republished")]
    internal partial void LogChannelClosed(string lane, string reason, int count);

    /// <summary>One channel: a single writer sends in order; confirms, returns and closes settle what is pending.</summary>
    private sealed class BrokerLane(OutboxBroker broker, IConnection connection, string name)
    {
        private readonly Channel<PublishItem> _queue = Channel.CreateUnbounded<PublishItem>(new UnboundedChannelOptions { SingleReader = true });

        // Per agent, the newest generation that had a message fail on this lane: its later messages of that generation or
        // an older one were queued before the dispatcher started the agent over, and must not overtake the failed one.
        private readonly System.Collections.Concurrent.ConcurrentDictionary<int, long> _failedGenerations = new();
        private ChannelState? _state;

        public int Pending => (_state?.Count ?? 0) + _queue.Reader.Count;

        public long OldestSentAt => _state?.OldestSentAt ?? 0;

        public async Task OpenAsync(CancellationToken cancellationToken)
        {
            _state = await ChannelState.OpenAsync(broker, this, connection, name, cancellationToken);
            _ = Task.Run(WriteAsync, CancellationToken.None);
        }

        public void Enqueue(PublishItem item)
        {
            if (!_queue.Writer.TryWrite(item))
            {
                broker.Complete(item, PublishResult.Failed, "the publisher closed");
            }
        }

        /// <summary>An item of this agent and generation failed: its later ones queued here fail too.</summary>
        public void Failed(PublishItem item) =>
            _failedGenerations.AddOrUpdate(item.AgentId, item.Generation, (_, known) => Math.Max(known, item.Generation));

        public void FailAll(string reason)
        {
            _queue.Writer.TryComplete();
            _state?.FailAll(reason);
            while (_queue.Reader.TryRead(out var item))
            {
                broker.Complete(item, PublishResult.Failed, reason);
            }
        }

        private async Task WriteAsync()
        {
            var reader = _queue.Reader;
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var item))
                {
                    if (_failedGenerations.TryGetValue(item.AgentId, out var failed) && item.Generation <= failed)
                    {
                        broker.Complete(item, PublishResult.Failed, "an earlier message of the agent failed");
                        continue;
                    }

                    if (Stopwatch.GetTimestamp() > item.ValidUntil)
                    {
                        // The lease ran out while it waited (a frozen process, a stalled broker): it may be another's now.
                        Failed(item);
                        broker.Complete(item, PublishResult.Failed, "the partition's lease ran out before it was sent");
                        continue;
                    }

                    try
                    {
                        if (_state is not { IsOpen: true })
                        {
                            if (!connection.IsOpen)
                            {
                                throw new InvalidOperationException("the connection is closed");
                            }

                            // The broker closed the channel (a message it would not take): a new one, for the next messages.
                            _state = await ChannelState.OpenAsync(broker, this, connection, name, CancellationToken.None);
                        }

                        await _state.PublishAsync(item);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        _state?.Forget(item);
                        Failed(item);
                        broker.Complete(item, PublishResult.Failed, e.Message);

                        _state?.FailAll(e.Message);
                    }
                }
            }
        }
    }

    /// <summary>One channel's incarnation and what was sent on it, by publish sequence number.</summary>
    private sealed class ChannelState
    {
        private readonly OutboxBroker _broker;
        private readonly BrokerLane _lane;
        private readonly IChannel _channel;
        private readonly string _name;
        private readonly SortedDictionary<ulong, PublishItem> _pending = [];

        // Mandatory messages by id, oldest first (one event may be pending twice: a failed generation's copy and its retry).
        private readonly Dictionary<string, List<PublishItem>> _mandatory = [];
        private readonly Lock _gate = new();
        private bool _failed;

        private ChannelState(OutboxBroker broker, BrokerLane lane, IChannel channel, string name)
        {
            _broker = broker;
            _lane = lane;
            _channel = channel;
            _name = name;
            channel.BasicAcksAsync += (_, e) => Settle(e.DeliveryTag, e.Multiple, ack: true);
            channel.BasicNacksAsync += (_, e) => Settle(e.DeliveryTag, e.Multiple, ack: false);
            channel.BasicReturnAsync += (_, e) => OnReturn(e);
            channel.ChannelShutdownAsync += (_, e) =>
            {
                // Closed by the broker with a channel error (403–406, not a connection's 320 or 5xx): caused by what it was sent.
                FailAll($"{e.ReplyCode} {e.ReplyText}", suspectOldest: e.Initiator == ShutdownInitiator.Peer && e.ReplyCode is >= 403 and <= 406);
                return Task.CompletedTask;
            };
        }

        public bool IsOpen => _channel.IsOpen && !_failed;

        public int Count
        {
            get
            {
                lock (_gate)
                {
                    return _pending.Count;
                }
            }
        }

        public long OldestSentAt
        {
            get
            {
                lock (_gate)
                {
                    return _pending.Count == 0 ? 0 : _pending.First().Value.SentAt;
                }
            }
        }

        public static async Task<ChannelState> OpenAsync(OutboxBroker broker, BrokerLane lane, IConnection connection, string name, CancellationToken cancellationToken)
        {
            // Confirms on, tracked here (not by the client, whose tracking completes a publish only at its confirm).
            var channel = await connection.CreateChannelAsync(
                new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: false), cancellationToken);
            return new ChannelState(broker, lane, channel, name);
        }

        public async Task PublishAsync(PublishItem item)
        {
            var sequence = await _channel.GetNextPublishSequenceNumberAsync();
            item.SentAt = Stopwatch.GetTimestamp();
            lock (_gate)
            {
                if (_failed)
                {
                    throw new InvalidOperationException("the channel closed");
                }

                _pending[sequence] = item;
                if (item.Mandatory)
                {
                    if (!_mandatory.TryGetValue(item.MessageId, out var same))
                    {
                        _mandatory[item.MessageId] = same = [];
                    }

                    same.Add(item);
                }
            }

            var properties = new BasicProperties
            {
                MessageId = item.MessageId,
                ContentType = MessageEnvelope.ContentType,
                DeliveryMode = DeliveryModes.Persistent,
            };
            await _channel.BasicPublishAsync(item.Exchange, item.RoutingKey, item.Mandatory, properties, item.Body);
        }

        /// <summary>Takes back an item whose publish threw, if the channel's failure did not already.</summary>
        public void Forget(PublishItem item)
        {
            lock (_gate)
            {
                var entry = _pending.FirstOrDefault(p => ReferenceEquals(p.Value, item));
                if (entry.Value is not null)
                {
                    _pending.Remove(entry.Key);
                    RemoveMandatory(item);
                }
            }
        }

        private void RemoveMandatory(PublishItem item)
        {
            if (item.Mandatory && _mandatory.TryGetValue(item.MessageId, out var same))
            {
                same.Remove(item);
                if (same.Count == 0)
                {
                    _mandatory.Remove(item.MessageId);
                }
            }
        }

        public void FailAll(string reason, bool suspectOldest = false)
        {
            List<PublishItem> failed;
            lock (_gate)
            {
                if (_failed)
                {
                    return;
                }

                _failed = true;
                failed = [.. _pending.Values];
                if (suspectOldest && failed.Count > 0)
                {
                    failed[0].Suspect = true;
                }

                _pending.Clear();
                _mandatory.Clear();
            }

            if (failed.Count > 0)
            {
                _broker.LogChannelClosed(_name, reason, failed.Count);
            }

            foreach (var item in failed)
            {
                _lane.Failed(item);
                _broker.Complete(item, PublishResult.Failed, reason);
            }

            _ = _channel.AbortAsync().ContinueWith(static _ => { }, TaskScheduler.Default);
        }

        private Task Settle(ulong tag, bool multiple, bool ack)
        {
            List<PublishItem> settled = [];
            lock (_gate)
            {
                if (multiple)
                {
                    foreach (var (sequence, item) in _pending)
                    {
                        if (sequence > tag)
                        {
                            break;
                        }

                        settled.Add(item);
                    }

                    foreach (var item in settled)
                    {
                        _pending.Remove(_pending.First().Key);
                    }
                }
                else if (_pending.Remove(tag, out var item))
                {
                    settled.Add(item);
                }

                foreach (var item in settled)
                {
                    RemoveMandatory(item);
                }
            }

            foreach (var item in settled)
            {
                if (ack)
                {
                    _broker.OnConfirmed(item, item.Returned ? PublishResult.Returned : PublishResult.Confirmed);
                }
                else
                {
                    _lane.Failed(item);
                    _broker.Complete(item, PublishResult.Nacked, "the broker refused it (basic.nack)");
                }
            }

            return Task.CompletedTask;
        }

        private Task OnReturn(BasicReturnEventArgs e)
        {
            // A return comes before the ack of the same message.
            lock (_gate)
            {
                if (e.BasicProperties.MessageId is { } id && _mandatory.TryGetValue(id, out var same)
                    && same.FirstOrDefault(i => !i.Returned) is { } item)
                {
                    item.Returned = true;
                }
            }

            return Task.CompletedTask;
        }
    }
}
