namespace CallbackHub.Observability;

/// <summary>What "healthy" means for the outbox, read from the <c>Outbox</c> section beside the publisher's own settings.</summary>
internal sealed class ObservabilityOptions
{
    public const string Section = "Outbox";

    /// <summary>The outbox counts as stalled (not ready) when its oldest unpublished event is older than this.</summary>
    public TimeSpan StalledAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the backlog and session counts are read from PostgreSQL for metrics and health.</summary>
    public TimeSpan StatusRefresh { get; set; } = TimeSpan.FromSeconds(5);

    public static IEnumerable<string> Validate(ObservabilityOptions o)
    {
        if (o.StatusRefresh <= TimeSpan.Zero)
        {
            yield return "Outbox__StatusRefresh must be positive.";
        }

        if (o.StalledAfter <= o.StatusRefresh)
        {
            yield return "Outbox__StalledAfter must be longer than Outbox__StatusRefresh.";
        }
    }
}
