namespace CallbackHub.Publishing;

internal sealed class OutboxOptions
{
    public const string Section = "Outbox";

    /// <summary>Rows read per dispatch round.</summary>
    public int BatchSize { get; set; } = 1000;

    /// <summary>Agents published concurrently; one agent's events are always published one after another.</summary>
    public int MaxConcurrentAgents { get; set; } = 64;

    /// <summary>Safety-net poll; commits wake the dispatcher at once (in-process signal or LISTEN/NOTIFY).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait for one publish to be confirmed by the broker before it is retried later.</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest pause between rounds while the broker keeps failing.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a shutting-down instance keeps publishing what is still in the outbox.</summary>
    public TimeSpan ShutdownFlushTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public static IEnumerable<string> Validate(OutboxOptions o)
    {
        if (o.BatchSize is < 1 or > 100_000)
        {
            yield return "Outbox__BatchSize must be between 1 and 100000.";
        }

        if (o.MaxConcurrentAgents is < 1 or > 10_000)
        {
            yield return "Outbox__MaxConcurrentAgents must be between 1 and 10000.";
        }

        if (o.PollInterval <= TimeSpan.Zero || o.PublishTimeout <= TimeSpan.Zero || o.MaxRetryDelay <= TimeSpan.Zero)
        {
            yield return "Outbox__PollInterval, Outbox__PublishTimeout and Outbox__MaxRetryDelay must be positive.";
        }
    }
}
