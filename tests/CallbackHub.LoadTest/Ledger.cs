using System.Diagnostics;

namespace CallbackHub.LoadTest;

/// <summary>One event the tool pushed, and what the consumer saw of it.</summary>
internal sealed class SentEvent(string type, string content, long pushedAt)
{
    public string Type { get; } = type;
    public string Content { get; } = content;

    /// <summary>Stopwatch timestamp the push was due (open loop) or sent (closed loop).</summary>
    public long PushedAt { get; } = pushedAt;

    public bool Acked { get; set; }
    public long ReceivedAt { get; set; }
    public int Received { get; set; }
    public string? ReceivedType { get; set; }
    public string? ReceivedContent { get; set; }
}

/// <summary>
/// What one agent pushed, in order. CallbackHub numbers an agent's events 1, 2, 3… in arrival order and this
/// tool pushes an agent's batches one after another (as the gateway does), so the event with sequence
/// <c>BaseSequence + i + 1</c> on the wire must be <c>Sent[i]</c>: that is how arrivals are matched event by
/// event, whatever their content (many events have <c>null</c> content, so content alone could not identify them).
/// </summary>
internal sealed class AgentLedger(int agentId)
{
    public int AgentId { get; } = agentId;

    /// <summary>The agent's last sequence before the run (its sign-in events).</summary>
    public long BaseSequence { get; set; }

    public List<SentEvent> Sent { get; } = new(4096);
    public long LastSequenceSeen { get; set; }
    public string Token { get; set; } = "";
    public string Guid { get; set; } = "";
}

/// <summary>Counts over the whole run.</summary>
internal sealed class RunCounters
{
    public long Duplicates;
    public long OrderViolations;
    public long PreRun;
    public long Unexpected;
    public long Rejected;
    public long Retried;

    public static double Milliseconds(long fromTimestamp, long toTimestamp) =>
        (toTimestamp - fromTimestamp) * 1000.0 / Stopwatch.Frequency;
}
