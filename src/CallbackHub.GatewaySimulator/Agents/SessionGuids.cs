namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>What a presented Guid is worth for a session.</summary>
internal enum GuidCheck
{
    Current,
    Previous,
    Expired,
    Unknown,
}

/// <summary>
/// The Guid of one session: the current value plus replaced values that stay valid until they expire
/// (dynamic mode), so a client that has not yet seen the rotation is not locked out at once.
/// Callers hold the agent's lock.
/// </summary>
internal sealed class SessionGuids
{
    private readonly string serverName;
    private readonly List<(string Guid, DateTimeOffset ExpiresAt)> replaced = [];
    private DateTimeOffset currentIssuedAt;

    public SessionGuids(string serverName, DateTimeOffset now)
    {
        this.serverName = serverName;
        Current = NewGuid();
        currentIssuedAt = now;
    }

    public string Current { get; private set; }

    public GuidCheck Check(string? guid, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(guid))
        {
            return GuidCheck.Unknown;
        }

        if (guid == Current)
        {
            return GuidCheck.Current;
        }

        foreach (var (old, expiresAt) in replaced)
        {
            if (old == guid)
            {
                return now < expiresAt ? GuidCheck.Previous : GuidCheck.Expired;
            }
        }

        return GuidCheck.Unknown;
    }

    /// <summary>Rotates when the current value is older than the rotation interval; true if it did.</summary>
    public bool RotateIfDue(DateTimeOffset now, TimeSpan rotationInterval, TimeSpan expiry)
    {
        if (now - currentIssuedAt < rotationInterval)
        {
            return false;
        }

        Rotate(now, expiry);
        return true;
    }

    public void Rotate(DateTimeOffset now, TimeSpan expiry)
    {
        // Expired values are kept one more expiry period, so a late client is told 000-003 (expired)
        // rather than 100-006 (unknown), then forgotten.
        replaced.RemoveAll(r => now - r.ExpiresAt > expiry);
        replaced.Add((Current, currentIssuedAt + expiry));
        Current = NewGuid();
        currentIssuedAt = now;
    }

    // Shaped like the real gateway's: a hyphenated UUID, then the server route after a dot
    // (279fe21d-2caa-4437-84c3-ab9e9dae20f5.AgentGateway0; docs/gateway-protocol.md §1).
    private string NewGuid() => $"{Guid.NewGuid():D}.{serverName}";
}
