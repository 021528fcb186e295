namespace CallbackHub.Outbox;

/// <summary>
/// A slice of the agents (agent id mod the partition count), published by one instance at a time. A new owner raises the
/// epoch; progress is recorded only under the epoch it was published under (the fence).
/// </summary>
internal sealed class OutboxPartition
{
    public int PartitionId { get; set; }
    public string? OwnerInstance { get; set; }
    public long Epoch { get; set; }
    public DateTimeOffset? LeaseExpiresAt { get; set; }
}

/// <summary>An instance that publishes, until <see cref="ExpiresAt"/> (the database's clock): partitions are shared among these.</summary>
internal sealed class OutboxInstance
{
    public string InstanceId { get; set; } = "";
    public DateTimeOffset ExpiresAt { get; set; }
}
