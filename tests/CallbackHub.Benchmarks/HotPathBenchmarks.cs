using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using CallbackHub.Agents;
using CallbackHub.Callbacks;
using CallbackHub.Contracts;
using CallbackHub.Outbox;

namespace CallbackHub.Benchmarks;

/// <summary>The CPU work of one push on CallbackHub's hot path, step by step, for 1, 3 and 5 events.</summary>
[MemoryDiagnoser]
public class HotPathBenchmarks
{
    private byte[] _body = [];
    private PushBatch _batch = null!;
    private readonly string _token = ServiceToken.Generate();
    private byte[] _storedHash = [];
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;
    private readonly MessageEnvelope _envelope = new("rabbitmq", "/");

    [Params(1, 3, 5)]
    public int Events { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _body = Pushes.Body(Events);
        if (!PushParser.TryParse(_body, out _batch, out _))
        {
            throw new InvalidOperationException("The benchmark push does not parse.");
        }

        _storedHash = ServiceToken.Hash(_token);
    }

    /// <summary>JSON parse, validation, content extraction and the re-send fingerprint (SHA-256).</summary>
    [Benchmark]
    public object ParseAndValidate() => PushParser.TryParse(_body, out var batch, out var rejection) ? batch : rejection;

    /// <summary>What SessionTokens does per push once the agent's hashes are cached.</summary>
    [Benchmark]
    public bool TokenCheck() => CryptographicOperations.FixedTimeEquals(ServiceToken.Hash(_token), _storedHash);

    /// <summary>EventStore before the SQL: arrays of the outbox rows, UUIDv7 ids, the parameters.</summary>
    [Benchmark]
    public object BuildOutboxRows() => EventStore.BuildAppendCommand([new AppendInput(_batch, _now, new RetryRule(TimeSpan.FromMinutes(5), false), [.. _batch.Events.Select(_ => Guid.CreateVersion7(_now))])]);

    /// <summary>The dispatcher's message for each event: its routing key and its MassTransit envelope, as sent.</summary>
    [Benchmark]
    public int BuildMessages()
    {
        var bytes = 0;
        long sequence = 0;
        foreach (var e in _batch.Events)
        {
            var row = new OutboxEvent(Guid.CreateVersion7(), _batch.AgentId, ++sequence, e.EventType, e.ContentJson, e.GeneratedAt, _now);
            var routingKey = AgentEventTopology.RoutingKey(row.EventType, row.AgentId);
            bytes += routingKey.Length + _envelope.Write(row, _now).Length;
        }

        return bytes;
    }
}
