using Microsoft.Extensions.Options;

namespace CallbackHub.Outbox;

/// <summary>
/// Keeps this instance from taking pushes much faster than its publisher gets them confirmed. Counted here: the events
/// committed here and handed to the publisher that it has not sent yet (they wait in memory because the broker's confirm
/// window, <see cref="OutboxOptions.MaxInFlight"/>, is full), plus the events of pushes let in and not yet committed. A push
/// this instance would publish is let in while that stays within <see cref="OutboxOptions.MaxQueued"/>; otherwise it waits
/// its turn (first come, first in) for at most <see cref="OutboxOptions.IngestWaitWhenBehind"/>, then goes on regardless.
/// Taking pushes faster than the broker confirms them only grows the backlog (and the time to consumers) and takes CPU the
/// broker needs; the events stay with the gateway meanwhile (its next push of an agent waits for the answer). Nothing is
/// refused, and nothing accepted waits here: a push waits before its events are stored, so a gateway that gives up on it
/// sends it again.
/// </summary>
internal sealed class OutboxBackpressure(Func<int, bool> publishes, IOptions<OutboxOptions> options)
{
    public OutboxBackpressure(OutboxPartitions partitions, IOptions<OutboxOptions> options)
        : this(partitions.Publishes, options)
    {
    }

    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private int _queued;
    private int _entering;
    private long _waits;

    /// <summary>Events committed here and handed to the publisher that it has not sent yet (most wait for the confirm window).</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Pushes that had to wait for the publisher since the start.</summary>
    public long Waits => Interlocked.Read(ref _waits);

    /// <summary>Events committed here were handed to the publisher (before their pushes are answered).</summary>
    public void Added(int events)
    {
        lock (_gate)
        {
            _queued += events;
        }
    }

    /// <summary>The publisher sent these events, or left them to be read back from the database.</summary>
    public void Removed(int events)
    {
        lock (_gate)
        {
            _queued -= events;
            LetInWhileRoom();
        }
    }

    /// <summary>
    /// Lets a push of <paramref name="events"/> events in: at once when this instance does not publish
    /// <paramref name="agentId"/>'s partition or has room, otherwise after the pushes waiting before it, or after
    /// <see cref="OutboxOptions.IngestWaitWhenBehind"/>. Dispose the result once the push is committed or has failed.
    /// </summary>
    public async ValueTask<Entry> EnterAsync(int agentId, int events, CancellationToken cancellationToken)
    {
        var limit = options.Value.IngestWaitWhenBehind;
        if (limit <= TimeSpan.Zero || !publishes(agentId))
        {
            return default;
        }

        Waiter waiter;
        lock (_gate)
        {
            if (_waiters.Count == 0 && HasRoom(events))
            {
                _entering += events;
                return new Entry(this, events);
            }

            waiter = new Waiter(events);
            waiter.Node = _waiters.AddLast(waiter);
        }

        Interlocked.Increment(ref _waits);
        try
        {
            await waiter.LetIn.Task.WaitAsync(limit, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Waited long enough: in regardless (unless let in just now).
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                if (waiter.Node is not null)
                {
                    _waiters.Remove(waiter.Node);
                    waiter.Node = null;
                    LetInWhileRoom();
                    throw;
                }
            }

            Left(events); // let in just as it gave up
            throw;
        }

        lock (_gate)
        {
            if (waiter.Node is not null)
            {
                _waiters.Remove(waiter.Node);
                waiter.Node = null;
                _entering += events;
                LetInWhileRoom();
            }
        }

        return new Entry(this, events);
    }

    private bool HasRoom(int events) => _queued + _entering + events <= options.Value.MaxQueued || _queued + _entering == 0;

    // Under the lock.
    private void LetInWhileRoom()
    {
        while (_waiters.First is { } first && HasRoom(first.Value.Events))
        {
            _waiters.RemoveFirst();
            first.Value.Node = null;
            _entering += first.Value.Events;
            first.Value.LetIn.TrySetResult();
        }
    }

    private void Left(int events)
    {
        lock (_gate)
        {
            _entering -= events;
            LetInWhileRoom();
        }
    }

    /// <summary>A push let in; it counts against the room until it is committed (and handed over) or failed.</summary>
    public readonly struct Entry(OutboxBackpressure? owner, int events) : IDisposable
    {
        public void Dispose() => owner?.Left(events);
    }

    private sealed class Waiter(int events)
    {
        public int Events { get; } = events;
        public TaskCompletionSource LetIn { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public LinkedListNode<Waiter>? Node { get; set; }
    }
}
