namespace CallbackHub.Callbacks;

internal sealed class CallbackOptions
{
    public const string Section = "Callbacks";

    /// <summary>Largest push body accepted; a larger one is answered 413.</summary>
    public long MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// How long after accepting a batch an identical re-send of it (the gateway retries a push whose answer
    /// it did not see) is recognised and dropped. The gateway gives up after 120 s, so this must be longer.
    /// </summary>
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest a push waits for PostgreSQL before it is answered 503 (the gateway then retries).</summary>
    public TimeSpan StoreTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long an instance trusts what it read about an agent's tokens. Changes made by this instance apply at
    /// once; a sign-out made by another instance applies within this time, a token rotated by another
    /// instance at once (an unknown token forces a fresh read).
    /// </summary>
    public TimeSpan SessionCacheTtl { get; set; } = TimeSpan.FromSeconds(5);

    public static IEnumerable<string> Validate(CallbackOptions o)
    {
        if (o.MaxBodyBytes is < 1024 or > 64 * 1024 * 1024)
        {
            yield return "Callbacks__MaxBodyBytes must be between 1024 and 67108864.";
        }

        if (o.DuplicateWindow < TimeSpan.FromSeconds(130))
        {
            yield return "Callbacks__DuplicateWindow must be at least 00:02:10: the gateway re-sends a batch for up to 120 s.";
        }

        if (o.StoreTimeout <= TimeSpan.Zero)
        {
            yield return "Callbacks__StoreTimeout must be positive.";
        }

        if (o.SessionCacheTtl < TimeSpan.Zero)
        {
            yield return "Callbacks__SessionCacheTtl must not be negative.";
        }
    }
}
