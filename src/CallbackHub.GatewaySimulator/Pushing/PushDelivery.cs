using CallbackHub.GatewaySimulator.Agents;
using CallbackHub.GatewaySimulator.Recording;
using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>
/// Delivers queued events like CC-Gateway: in order, in batches, re-sending the failed batch every
/// PushRetryInterval (as it was, or with newer events appended: the PushRetry switch) while it fails, and
/// forcing the agent out after PushFailTotal of failure.
/// </summary>
internal sealed class PushDelivery(
    PushSender sender,
    BoundedLog<PushAttempt> pushLog,
    Switchboard switches,
    IOptions<SimulatorOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<PushDelivery> logger)
{
    private long lastBatchId;

    /// <summary>Queues events of <paramref name="session"/>: pushed in push mode, kept for GET agentevent in poll mode.</summary>
    public void Enqueue(Agent agent, AgentSession session, IEnumerable<SimulatedEvent> events)
    {
        var queued = events.Select(e => new QueuedEvent(session, Stamp(e))).ToList();
        if (!session.IsPush)
        {
            foreach (var item in queued)
            {
                agent.PollEvents.Writer.TryWrite(item);
            }

            return;
        }

        if (agent.Queue.Enqueue(queued))
        {
            _ = Task.Run(() => DrainAsync(agent));
        }
    }

    /// <summary>One push outside the queue: no retry, no effect on the agent's counters or sign-in.</summary>
    public async Task<PushResponse> PushOnceAsync(
        AgentSession session,
        IEnumerable<SimulatedEvent> events,
        string? serviceToken,
        string? guid,
        CancellationToken cancellationToken)
    {
        var stamped = events.Select(Stamp).ToList();
        var body = PushBody.Write(session.AgentId, stamped);
        guid ??= session.Guids.Current;
        serviceToken ??= session.ServiceToken!;
        var sentAt = time.GetUtcNow();
        var response = await sender.SendAsync(session.CallBackUri!, guid, serviceToken, body, cancellationToken);
        pushLog.Add(new PushAttempt(NextBatchId(), 1, session.AgentId, sentAt, session.CallBackUri!, guid, serviceToken,
            [.. stamped.Select(e => e.EventType)], body, response.Status, response.Body, response.Acknowledged, response.Error, OneShot: true));
        return response;
    }

    private SimulatedEvent Stamp(SimulatedEvent e) =>
        e.EventGenTime is null && options.Value.IncludeEventGenTime
            ? e with { EventGenTime = time.GetUtcNow().ToUnixTimeMilliseconds() }
            : e;

    private async Task DrainAsync(Agent agent)
    {
        var stopping = lifetime.ApplicationStopping;
        try
        {
            while (agent.Queue.TakeBatch(options.Value.MaxEventsPerPush) is { } batch)
            {
                await DeliverAsync(agent, batch, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The simulator is shutting down; undelivered events go with it.
        }
#pragma warning disable CA1031 // A bug in one agent's delivery must not stop the others; the queue restarts on the next event.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            logger.LogError(ex, "Push delivery for agent {AgentId} stopped unexpectedly", agent.Id);
            agent.Queue.Abandon();
        }
    }

    private async Task DeliverAsync(Agent agent, IReadOnlyList<QueuedEvent> taken, CancellationToken stopping)
    {
        var batch = taken.ToList();
        var session = batch[0].Session;
        var eventTypes = batch.Select(e => e.Event.EventType).ToList();
        var body = PushBody.Write(session.AgentId, batch.Select(e => e.Event));
        var batchId = NextBatchId();
        DateTimeOffset? failingSince = null;
        for (var attempt = 1; ; attempt++)
        {
            if (attempt > 1 && switches.Current.PushRetry == PushRetryContent.AppendNewer
                && agent.Queue.TakeMore(session, options.Value.MaxEventsPerPush - batch.Count) is { Count: > 0 } newer)
            {
                batch.AddRange(newer);
                eventTypes = [.. batch.Select(e => e.Event.EventType)];
                body = PushBody.Write(session.AgentId, batch.Select(e => e.Event));
            }

            // Guid and token are read per attempt: a retry goes out with the newest values, as the gateway's would.
            var guid = session.Guids.Current;
            var token = session.ServiceToken!;
            var sentAt = time.GetUtcNow();
            var response = await sender.SendAsync(session.CallBackUri!, guid, token, body, stopping);
            // Queue and counters change before the attempt is logged, so whoever sees the logged attempt sees them too.
            if (response.Acknowledged)
            {
                agent.Queue.CompleteBatch();
            }

            agent.Pushes.Count(response.Acknowledged);
            pushLog.Add(new PushAttempt(batchId, attempt, session.AgentId, sentAt, session.CallBackUri!, guid, token,
                eventTypes, body, response.Status, response.Body, response.Acknowledged, response.Error, OneShot: false));
            if (response.Acknowledged)
            {
                return;
            }

            var now = time.GetUtcNow();
            failingSince ??= now;
            if (now - failingSince >= options.Value.PushFailTotal)
            {
                GiveUp(agent, session, now);
                return;
            }

            logger.LogDebug("Push batch {BatchId} to agent {AgentId} failed (attempt {Attempt}): {Status} {Error}",
                batchId, session.AgentId, attempt, response.Status, response.Error);
            await DelayUntilAsync(now + options.Value.PushRetryInterval, stopping);
        }
    }

    private void GiveUp(Agent agent, AgentSession session, DateTimeOffset now)
    {
        // The queue empties before the sign-out shows, so an observer never sees a signed-out agent still queueing.
        var dropped = agent.Queue.GiveUp(session);
        bool signedOut;
        lock (agent.Gate)
        {
            signedOut = agent.End(session, "push-failures", now, options.Value.SignOutDuration);
        }

        logger.LogWarning(
            "Pushes to agent {AgentId} failed for {FailTotal}: dropped {Dropped} events; agent signed out: {SignedOut}",
            session.AgentId, options.Value.PushFailTotal, dropped, signedOut);
    }

    private long NextBatchId() => Interlocked.Increment(ref lastBatchId);

    // Waits until an absolute time, so a test that advances a fake clock early does not lose the wake-up.
    private async Task DelayUntilAsync(DateTimeOffset due, CancellationToken cancellationToken)
    {
        var wait = due - time.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken);
        }
    }
}
