namespace CallbackHub.Storage;

/// <summary>
/// A running instance of CallbackHub that keeps sessions, alive while <see cref="ExpiresAt"/> (the database's clock)
/// is ahead: the instances share the agents between them, and count each other here to know their share.
/// </summary>
internal sealed class KeeperInstance
{
    public string InstanceId { get; set; } = "";
    public DateTimeOffset ExpiresAt { get; set; }
}
