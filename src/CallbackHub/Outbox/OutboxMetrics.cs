using System.Diagnostics.Metrics;
using CallbackHub.Hosting;

namespace CallbackHub.Outbox;

/// <summary>This instance's own outbox instruments; the cluster-wide ones (backlog, lag per partition) are <see cref="OutboxMonitor"/>'s.</summary>
internal sealed class OutboxMetrics
{
    private readonly CallbackHubMetrics _shared;
    private readonly Meter _meter;
    private readonly Counter<long> _leaseChanges;
    private readonly Counter<long> _publishFailures;
    private readonly Counter<long> _unrouted;
    private readonly Counter<long> _fenced;
    private readonly Counter<long> _sent;
    private Func<int> _inFlight = () => 0;

    public OutboxMetrics(IMeterFactory meterFactory, CallbackHubMetrics shared, OutboxBackpressure backpressure)
    {
        _shared = shared;
        _meter = meterFactory.Create(CallbackHubMetrics.MeterName);
        _leaseChanges = _meter.CreateCounter<long>("callbackhub.outbox.lease_changes", "{partition}",
            "Partitions this instance took (acquired), lost to another instance (lost) or handed back (released).");
        _publishFailures = _meter.CreateCounter<long>("callbackhub.outbox.publish_failures", "{message}",
            "Messages not confirmed, by reason: nack, channel-closed (by the broker, blamed on the message), connection.");
        _unrouted = _meter.CreateCounter<long>("callbackhub.outbox.unrouted", "{message}",
            "Messages no queue was bound to, kept in the unrouted queue.");
        _fenced = _meter.CreateCounter<long>("callbackhub.outbox.progress_fenced", "{agent}",
            "Progress writes refused because another instance had taken the partition over.");
        _sent = _meter.CreateCounter<long>("callbackhub.outbox.sent", "{message}",
            "Messages sent to RabbitMQ, by how the events got to the publisher: handoff (straight from the commit) or read-back (from PostgreSQL).");
        _meter.CreateObservableGauge("callbackhub.outbox.confirms_in_flight", () => _inFlight(), "{message}",
            "Messages this instance sent to RabbitMQ and has no confirm for yet.");
        _meter.CreateObservableGauge("callbackhub.outbox.queued", () => backpressure.Queued, "{event}",
            "Events committed here that wait in memory for room in the confirm window.");
        _meter.CreateObservableCounter("callbackhub.outbox.ingest_waits", () => backpressure.Waits, "{push}",
            "Pushes that waited before being stored because this instance's publisher was behind (Outbox__MaxQueued events waiting).");
    }

    public void ObserveInFlight(Func<int> inFlight) => _inFlight = inFlight;

    public void EventsPublished(int count) => _shared.EventsPublished(count);

    public void LeaseChanges(LeaseChanges changes)
    {
        Add("acquired", changes.Acquired.Count);
        Add("lost", changes.Lost.Count);
        Add("released", changes.Released.Count);
    }

    public void PublishFailed(string reason) => _publishFailures.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Unrouted() => _unrouted.Add(1);

    public void ProgressFenced() => _fenced.Add(1);

    public void Sent(int count, bool readBack)
    {
        if (count > 0)
        {
            _sent.Add(count, new KeyValuePair<string, object?>("path", readBack ? "read-back" : "handoff"));
        }
    }

    private void Add(string change, int count)
    {
        if (count > 0)
        {
            _leaseChanges.Add(count, new KeyValuePair<string, object?>("change", change));
        }
    }
}
