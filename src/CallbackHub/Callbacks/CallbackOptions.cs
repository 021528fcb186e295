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

    /// <summary>
    /// Whether a push that starts with the agent's last accepted batch skips those events even when they carry no
    /// <c>eventGenTime</c> (older gateways). Off: such a retry stores them again (a duplicate), because without generation
    /// times a genuinely new batch can begin with the same events as the last one, and skipping them would lose events.
    /// </summary>
    public bool AppendedRetriesWithoutGenTime { get; set; }

    /// <summary>Longest a push waits for PostgreSQL before it is answered 503 (the gateway then retries).</summary>
    public TimeSpan StoreTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A push is committed within this long of its arrival (its headers), or not at all: past it, it is not sent to
    /// PostgreSQL, and a transaction it is in is rolled back rather than committed (it was answered 503 by then). The
    /// gateway re-sends a batch 10 s after sending it; a copy committed later could land after the re-send and the agent's
    /// next push (taken by another instance meanwhile) and be stored a second time, out of order.
    /// </summary>
    public TimeSpan CommitWithin { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>
    /// How long an instance trusts what it read about an agent's tokens without word from the change feed
    /// (<see cref="SessionChangePollInterval"/>): changes made by this instance apply at once, a token rotated by another
    /// instance at once (an unknown token forces a fresh read), and a sign-out made by another instance within the poll
    /// interval — or within this time while the feed cannot read (the database away). Zero: read on every push.
    /// </summary>
    public TimeSpan SessionCacheTtl { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often each instance asks which sessions' tokens changed (any instance's changes, or one made by hand): a sign-out
    /// or revocation elsewhere applies within about this long. Unset: a quarter of <see cref="SessionCacheTtl"/>, at most one
    /// second. While those polls keep coming, what an instance read about an agent's tokens is not read again on its pushes.
    /// </summary>
    public TimeSpan? SessionChangePollInterval { get; set; }

    public TimeSpan EffectiveSessionChangePollInterval =>
        SessionChangePollInterval ?? TimeSpan.FromTicks(Math.Clamp(SessionCacheTtl.Ticks / 4, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(1).Ticks));

    /// <summary>
    /// How many queries a second this instance may make to find the agents of service tokens it does not know (each query
    /// covers every such token waiting, up to 1,000). Bounds what strangers with made-up tokens cost the database.
    /// </summary>
    public int TokenLookupsPerSecond { get; set; } = 4;

    /// <summary>How long a token found in no session is answered 401 without asking the database again.</summary>
    public TimeSpan UnknownTokenMemory { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Refused pushes a second allowed from one client address (a token bucket of <see cref="RefusalBurst"/>); past that its
    /// refusals are answered 429 at once. Only refusals count: accepted pushes from the same address are never limited.
    /// </summary>
    public int RefusalsPerSecondPerAddress { get; set; } = 10;

    public int RefusalBurst { get; set; } = 50;

    /// <summary>Longest a push's body may take to arrive, from the end of its headers; after it the push is answered 408.</summary>
    public TimeSpan BodyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Slowest a push's body may arrive after <see cref="MinBodyRateGrace"/>: Kestrel then drops the connection.</summary>
    public int MinBodyBytesPerSecond { get; set; } = 4096;

    public TimeSpan MinBodyRateGrace { get; set; } = TimeSpan.FromSeconds(2);

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

        if (o.CommitWithin < TimeSpan.FromSeconds(1) || o.CommitWithin > TimeSpan.FromSeconds(10))
        {
            yield return "Callbacks__CommitWithin must be between 00:00:01 and 00:00:10 (the gateway re-sends a batch 10 s after sending it).";
        }

        if (o.SessionCacheTtl < TimeSpan.Zero)
        {
            yield return "Callbacks__SessionCacheTtl must not be negative.";
        }

        if (o.SessionChangePollInterval is { } poll && (poll <= TimeSpan.Zero || (o.SessionCacheTtl > TimeSpan.Zero && poll >= o.SessionCacheTtl)))
        {
            yield return $"Callbacks__SessionChangePollInterval must be positive and shorter than Callbacks__SessionCacheTtl ({o.SessionCacheTtl}): "
                         + "otherwise the cache of tokens cannot be kept current by it.";
        }

        if (o.TokenLookupsPerSecond is < 1 or > 1000)
        {
            yield return "Callbacks__TokenLookupsPerSecond must be between 1 and 1000.";
        }

        if (o.UnknownTokenMemory < TimeSpan.Zero)
        {
            yield return "Callbacks__UnknownTokenMemory must not be negative.";
        }

        if (o.RefusalsPerSecondPerAddress < 1 || o.RefusalBurst < 1)
        {
            yield return "Callbacks__RefusalsPerSecondPerAddress and Callbacks__RefusalBurst must be at least 1.";
        }

        if (o.BodyTimeout <= TimeSpan.Zero)
        {
            yield return "Callbacks__BodyTimeout must be positive.";
        }

        if (o.MinBodyBytesPerSecond < 0 || o.MinBodyRateGrace <= TimeSpan.FromSeconds(1))
        {
            yield return "Callbacks__MinBodyBytesPerSecond must not be negative (0 turns the check off) and Callbacks__MinBodyRateGrace must be longer than 00:00:01.";
        }
    }
}
