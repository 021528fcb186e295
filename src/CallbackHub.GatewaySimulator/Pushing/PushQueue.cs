using CallbackHub.GatewaySimulator.Agents;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>
/// The ordered push queue of one agent. At most one drain loop runs per queue, so events reach the
/// callback in the order they were queued, and a failing batch holds back everything behind it.
/// </summary>
internal sealed class PushQueue
{
    private readonly Lock gate = new();
    private readonly LinkedList<QueuedEvent> items = new();
    private int inFlight;
    private bool draining;

    /// <summary>Queued plus in-flight events.</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return items.Count + inFlight;
            }
        }
    }

    /// <summary>Appends events; true when the caller must start the drain loop.</summary>
    public bool Enqueue(IEnumerable<QueuedEvent> events)
    {
        lock (gate)
        {
            foreach (var queued in events)
            {
                items.AddLast(queued);
            }

            if (draining || items.Count == 0)
            {
                return false;
            }

            draining = true;
            return true;
        }
    }

    /// <summary>
    /// Takes the next batch: up to <paramref name="max"/> consecutive events of one session, since one
    /// push carries one Guid and token. Null (and the drain loop ends) when nothing is queued.
    /// </summary>
    public IReadOnlyList<QueuedEvent>? TakeBatch(int max)
    {
        lock (gate)
        {
            inFlight = 0;
            if (items.Count == 0)
            {
                draining = false;
                return null;
            }

            var session = items.First!.Value.Session;
            var batch = new List<QueuedEvent>(Math.Min(max, items.Count));
            while (batch.Count < max && items.First is { } first && ReferenceEquals(first.Value.Session, session))
            {
                batch.Add(first.Value);
                items.RemoveFirst();
            }

            inFlight = batch.Count;
            return batch;
        }
    }

    /// <summary>
    /// Moves up to <paramref name="max"/> events of <paramref name="session"/> from the head of the queue into
    /// the in-flight batch (a retry that appends newer events); empty when the next event is not the session's.
    /// </summary>
    public IReadOnlyList<QueuedEvent> TakeMore(AgentSession session, int max)
    {
        lock (gate)
        {
            var more = new List<QueuedEvent>();
            while (more.Count < max && items.First is { } first && ReferenceEquals(first.Value.Session, session))
            {
                more.Add(first.Value);
                items.RemoveFirst();
            }

            inFlight += more.Count;
            return more;
        }
    }

    /// <summary>The in-flight batch was delivered.</summary>
    public void CompleteBatch()
    {
        lock (gate)
        {
            inFlight = 0;
        }
    }

    /// <summary>Drops the in-flight batch and the queued events of a session whose pushes were given up.</summary>
    public int GiveUp(AgentSession session)
    {
        lock (gate)
        {
            var dropped = inFlight;
            inFlight = 0;
            for (var node = items.First; node is not null;)
            {
                var next = node.Next;
                if (ReferenceEquals(node.Value.Session, session))
                {
                    items.Remove(node);
                    dropped++;
                }

                node = next;
            }

            return dropped;
        }
    }

    /// <summary>After an unexpected error, lets the next Enqueue start a fresh drain loop.</summary>
    public void Abandon()
    {
        lock (gate)
        {
            inFlight = 0;
            draining = false;
        }
    }
}
