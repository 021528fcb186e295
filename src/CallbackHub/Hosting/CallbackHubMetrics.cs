using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CallbackHub.Hosting;

/// <summary>
/// The service's own instruments (meter <see cref="MeterName"/>). Code paths report here; exporting them
/// (OpenTelemetry, Prometheus) is configured at the composition root.
/// </summary>
internal sealed class CallbackHubMetrics
{
    public const string MeterName = "CallbackHub";

    private readonly Counter<long> _eventsReceived;
    private readonly Counter<long> _eventsStored;
    private readonly Counter<long> _eventsPublished;
    private readonly Counter<long> _pushesRejected;
    private readonly Counter<long> _tokenLookups;
    private readonly Counter<long> _sessionTokenReads;
    private readonly Counter<long> _sessionTokenChanges;
    private readonly Counter<long> _duplicatesDropped;
    private readonly Histogram<double> _gatewayCallDuration;
    private readonly Counter<long> _gatewayCallErrors;
    private readonly Counter<long> _heartbeatFailures;
    private readonly Counter<long> _tokenRotations;
    private readonly Counter<long> _stalledTransactionsEnded;

    public CallbackHubMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _eventsReceived = meter.CreateCounter<long>("callbackhub.events.received", "{event}", "Events in pushes that passed validation and authentication.");
        _eventsStored = meter.CreateCounter<long>("callbackhub.events.stored", "{event}", "Events committed to PostgreSQL.");
        _eventsPublished = meter.CreateCounter<long>("callbackhub.events.published", "{event}", "Events confirmed by RabbitMQ.");
        _pushesRejected = meter.CreateCounter<long>("callbackhub.pushes.rejected", "{push}", "Pushes refused, by reason.");
        _tokenLookups = meter.CreateCounter<long>("callbackhub.token.lookups", "{token}", "Service tokens this instance did not know, by what became of them (found, unknown, remembered-unknown, not-waited, overflow).");
        _sessionTokenReads = meter.CreateCounter<long>("callbackhub.session_tokens.reads", "{read}", "Agents' tokens read on a push, by why (first: not known here; expired: older than Callbacks__SessionCacheTtl while the change feed lags; token-not-held: a token the cache does not hold).");
        _sessionTokenChanges = meter.CreateCounter<long>("callbackhub.session_tokens.changes", "{session}", "Sessions whose tokens changed (in any instance), as read by this instance's change feed.");
        _duplicatesDropped = meter.CreateCounter<long>("callbackhub.events.duplicates_dropped", "{event}", "Events in re-sent batches that were recognised and dropped.");
        _gatewayCallDuration = meter.CreateHistogram<double>("callbackhub.gateway.call.duration", "s", "Duration of calls to the CC-Gateway, by operation and outcome.");
        _gatewayCallErrors = meter.CreateCounter<long>("callbackhub.gateway.call.errors", "{call}", "Gateway calls that failed or were refused, by operation and retcode.");
        _heartbeatFailures = meter.CreateCounter<long>("callbackhub.heartbeat.failures", "{heartbeat}", "Heartbeats that failed, by retcode.");
        _stalledTransactionsEnded = meter.CreateCounter<long>("callbackhub.database.stalled_transactions_ended", "{transaction}", "CallbackHub transactions (any instance's) ended because they waited on their client longer than Database__StalledTransactionTimeout.");
        _tokenRotations = meter.CreateCounter<long>("callbackhub.token.rotations", "{rotation}", "Service tokens rotated through a heartbeat.");
    }

    public void EventsReceived(int count) => _eventsReceived.Add(count);
    public void EventsStored(int count) => _eventsStored.Add(count);
    public void EventsPublished(int count) => _eventsPublished.Add(count);
    public void PushRejected(string reason) => _pushesRejected.Add(1, new KeyValuePair<string, object?>("reason", reason));
    public void SessionTokensRead(string reason) => _sessionTokenReads.Add(1, new KeyValuePair<string, object?>("reason", reason));
    public void SessionTokenChanges(int count) => _sessionTokenChanges.Add(count);
    public void DuplicatesDropped(int count) => _duplicatesDropped.Add(count);
    public void TokenLookup(string outcome) => _tokenLookups.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void GatewayCall(string operation, string outcome, TimeSpan duration)
    {
        var tags = new TagList { { "operation", operation }, { "outcome", outcome } };
        _gatewayCallDuration.Record(duration.TotalSeconds, tags);
        if (outcome != "0")
        {
            _gatewayCallErrors.Add(1, tags);
        }
    }

    public void HeartbeatFailed(string retcode) => _heartbeatFailures.Add(1, new KeyValuePair<string, object?>("retcode", retcode));
    public void TokenRotated() => _tokenRotations.Add(1);
    public void StalledTransactionEnded() => _stalledTransactionsEnded.Add(1);
}
