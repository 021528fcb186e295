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
    private readonly Histogram<double> _toSend;
    private readonly Histogram<double> _toConfirm;
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
        _toSend = _meter.CreateHistogram<double>("callbackhub.outbox.send_delay", "s",
            "From a push's arrival to its event being sent to RabbitMQ: the wait for the publisher, the commit, the queue.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _toConfirm = _meter.CreateHistogram<double>("callbackhub.outbox.confirm_duration", "s",
            "From a message's publish to the broker's confirm of it.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _sent = _meter.CreateCounter<long>("callbackhub.outbox.sent", "{message}",
            "Messages sent to RabbitMQ, by how the events got to the publisher: handoff (straight from the commit) or read-back (from PostgreSQL).");
        _meter.CreateObservableGauge("callbackhub.outbox.confirms_in_flight", () => _inFlight(), "{message}",
            "Messages this instance sent to RabbitMQ and has no confirm for yet.");
        _meter.CreateObservableGauge("callbackhub.outbox.queued", () => backpressure.Queued, "{event}",
            "Events committed here that wait in memory for room in the confirm window.");
        _meter.CreateObservableCounter("callbackhub.outbox.ingest_waits", () => backpressure.Waits, "{push}",
            "Pushes that waited before being stored because this instance's publisher was behind (Outbox__MaxQueued events waiting).");
    }

    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public void SendDelay(TimeSpan delay) => _toSend.Record(delay.TotalSeconds);

    public void ConfirmDuration(TimeSpan duration) => _toConfirm.Record(duration.TotalSeconds);

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
