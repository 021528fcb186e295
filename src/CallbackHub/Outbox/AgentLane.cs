namespace CallbackHub.Outbox;

/// <summary>
/// What the dispatcher knows of one agent it is publishing: how far the database says it is published
/// (<see cref="Recorded"/>), how far the broker confirmed it without a gap (<see cref="Confirmed"/>), and the highest
/// sequence sent in the current <see cref="Generation"/>. A failure starts a new generation from the first unconfirmed
/// event; outcomes of older generations are ignored. Touched by the dispatcher's loop only.
/// </summary>
internal sealed class AgentLane(int agentId, int partition, long epoch, long published)
{
    // Generations are unique across lanes: outcomes of a dropped lane's messages never match the lane that replaces it.
    private static long s_generations;

    // Sequences sent in this generation and not yet part of the confirmed prefix; true once confirmed out of order.
    private readonly Dictionary<long, bool> _outstanding = [];

    public int AgentId { get; } = agentId;
    public int Partition { get; } = partition;

    /// <summary>The partition's epoch this lane's progress is recorded under.</summary>
    public long Epoch { get; } = epoch;

    public long Recorded { get; set; } = published;
    public long Confirmed { get; private set; } = published;
    public long Sent { get; private set; } = published;
    public long Generation { get; private set; } = Interlocked.Increment(ref s_generations);

    /// <summary>Messages of this generation sent and not yet settled (a returned message's unrouted copy included).</summary>
    public int InFlight { get; set; }

    /// <summary>Failures of this agent's first unconfirmed event in a row that were its own (a nack, a channel it closed).</summary>
    public int Failures { get; private set; }

    public string? LastError { get; private set; }

    /// <summary>A <see cref="System.Diagnostics.Stopwatch"/> timestamp before which nothing is sent.</summary>
    public long RetryAt { get; private set; }

    /// <summary>Failed too often: reported, and tried only every <c>StuckRetryFactor</c> × the longest pause.</summary>
    public bool Stuck { get; set; }

    /// <summary>The highest sequence of this agent handed to the publisher's queue in memory (kept while it waits there).</summary>
    public long QueuedUpTo { get; set; }

    public bool Idle => InFlight == 0 && Confirmed == Recorded && Failures == 0 && QueuedUpTo <= Sent;

    public bool Settled => InFlight == 0 && Confirmed == Recorded;

    public void MarkSent(long sequence)
    {
        Sent = sequence;
        _outstanding[sequence] = false;
        InFlight++;
    }

    /// <summary>The broker confirmed <paramref name="sequence"/>; returns how many events joined the confirmed prefix.</summary>
    public int MarkConfirmed(long sequence)
    {
        if (!_outstanding.ContainsKey(sequence))
        {
            return 0;
        }

        _outstanding[sequence] = true;
        var advanced = 0;
        while (_outstanding.Remove(Confirmed + 1, out var confirmed))
        {
            if (!confirmed)
            {
                _outstanding[Confirmed + 1] = false;
                break;
            }

            Confirmed++;
            advanced++;
        }

        if (advanced > 0)
        {
            Failures = 0;
            Stuck = false;
            LastError = null;
        }

        return advanced;
    }

    /// <summary>
    /// Something sent in this generation failed: start over from the first unconfirmed event. <paramref name="ownFault"/>
    /// counts it against the agent (with a growing pause); otherwise it is sent again as soon as the broker takes it.
    /// </summary>
    public void Fail(string reason, bool ownFault, long now, TimeSpan delay)
    {
        Generation = Interlocked.Increment(ref s_generations);
        Sent = Confirmed;
        _outstanding.Clear();
        InFlight = 0;
        if (ownFault)
        {
            Failures++;
            LastError = reason;
            RetryAt = now + (long)(delay.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        }
    }
}
