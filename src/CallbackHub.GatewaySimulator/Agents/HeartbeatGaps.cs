namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>
/// Every gap an accepted heartbeat closed (since the previous heartbeat of the session, or since sign-in),
/// counted in whole seconds: the simulator-wide heartbeat-gap distribution. O(1) and lock-free per heartbeat.
/// </summary>
internal sealed class HeartbeatGaps(TimeProvider time)
{
    /// <summary>The last bucket counts every gap of at least this many seconds.</summary>
    public const int MaxBucketSeconds = 600;

    private readonly long[] buckets = new long[MaxBucketSeconds + 1];

    /// <summary>When the observations began: the simulator's start, or the last reset.</summary>
    public DateTimeOffset Since { get; private set; } = time.GetUtcNow();

    public void Record(TimeSpan gap)
    {
        var seconds = (int)Math.Clamp(Math.Floor(gap.TotalSeconds), 0, MaxBucketSeconds);
        Interlocked.Increment(ref buckets[seconds]);
    }

    /// <summary>The buckets that counted anything: gaps of at least FromSeconds and under FromSeconds+1.</summary>
    public IReadOnlyList<GapBucket> Snapshot()
    {
        var result = new List<GapBucket>();
        for (var seconds = 0; seconds < buckets.Length; seconds++)
        {
            if (Interlocked.Read(ref buckets[seconds]) is > 0 and var count)
            {
                result.Add(new GapBucket(seconds, count));
            }
        }

        return result;
    }

    public void Reset(DateTimeOffset now)
    {
        Since = now;
        for (var i = 0; i < buckets.Length; i++)
        {
            Interlocked.Exchange(ref buckets[i], 0);
        }
    }
}

/// <summary>How many heartbeat gaps lasted at least <paramref name="FromSeconds"/> and under one second more (the last bucket: or longer).</summary>
public sealed record GapBucket(int FromSeconds, long Count);
