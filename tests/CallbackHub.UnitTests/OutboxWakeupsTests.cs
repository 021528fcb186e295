using CallbackHub.Outbox;

namespace CallbackHub.UnitTests;

/// <summary>A wake-up names the agents, so the instance that holds them reads those rows and not every agent of its partitions.</summary>
public sealed class OutboxWakeupsTests
{
    [Fact]
    public void A_payload_names_the_agents_and_reads_back_the_same()
    {
        var payload = OutboxWakeups.FormatPayload([17, 3], [2045, 1001, 999999]);

        Assert.Equal("|1001,2045,999999", payload); // each receiver works out the partitions with its own count
        Assert.True(OutboxWakeups.TryParsePayload(payload, out var partitions, out var agents));
        Assert.Empty(partitions);
        Assert.Equal([1001, 2045, 999999], agents);
    }

    [Fact]
    public void Too_many_agents_for_one_payload_name_only_the_partitions_and_every_payload_stays_under_postgresql_s_limit()
    {
        var agents = Enumerable.Range(999_999 - OutboxWakeups.MaxAgentsPerNotify + 1, OutboxWakeups.MaxAgentsPerNotify).ToList();
        var allPartitions = Enumerable.Range(0, 4096).ToList(); // Outbox__Partitions at its largest
        var most = OutboxWakeups.FormatPayload(allPartitions, agents);
        Assert.True(most.Length < 8000, $"{most.Length} characters"); // pg_notify refuses a payload of 8,000 bytes or more

        var payload = OutboxWakeups.FormatPayload([5], [.. agents, 1001]);
        Assert.Equal("5", payload);
        Assert.True(OutboxWakeups.TryParsePayload(payload, out var partitions, out var named));
        Assert.Equal([5], partitions);
        Assert.Null(named); // every agent of partition 5 is read

        // 4,096 partitions do not fit either: "-1", every instance reads every agent of its partitions.
        Assert.Equal("-1", OutboxWakeups.FormatPayload(allPartitions, [.. agents, 1001]));
    }

    [Theory]
    [InlineData("3,x")]
    [InlineData("3|1001|1002")]
    [InlineData("3|-4")]
    [InlineData("3|10a")]
    public void A_payload_that_cannot_be_read_is_refused_so_every_held_partition_is_read(string payload) =>
        Assert.False(OutboxWakeups.TryParsePayload(payload, out _, out _));

    [Fact]
    public void An_older_instance_s_payload_names_partitions_only() // "-1": it did not know the partition count yet
    {
        Assert.True(OutboxWakeups.TryParsePayload("-1", out var partitions, out var agents));
        Assert.Equal([-1], partitions);
        Assert.Null(agents);
    }
}
