namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>Push attempts of the queued delivery of one agent (push-once is not counted).</summary>
internal sealed class PushCounters
{
    private long pushed;
    private long acknowledged;
    private long failed;

    public long Pushed => Interlocked.Read(ref pushed);

    public long Acknowledged => Interlocked.Read(ref acknowledged);

    public long Failed => Interlocked.Read(ref failed);

    public void Count(bool wasAcknowledged)
    {
        Interlocked.Increment(ref pushed);
        if (wasAcknowledged)
        {
            Interlocked.Increment(ref acknowledged);
        }
        else
        {
            Interlocked.Increment(ref failed);
        }
    }
}
