using System.Diagnostics;
using Npgsql;
using NpgsqlTypes;

namespace CallbackHub.Outbox;

/// <summary>A partition this instance publishes, under <see cref="Epoch"/>, trusted locally until <see cref="ValidUntil"/>.</summary>
/// <param name="ValidUntil">A <see cref="Stopwatch"/> timestamp: the lease's end on this machine's monotonic clock, a margin before the database's.</param>
/// <param name="Draining">Being handed to another instance: nothing new is sent, what is in flight is settled first.</param>
internal sealed record HeldPartition(int Id, long Epoch, long ValidUntil, bool Draining)
{
    public bool IsPublishable(long now) => !Draining && now < ValidUntil;
}

/// <summary>
/// Which instance publishes which partition. Leases live in <c>outbox_partitions</c> and expire on the database's clock,
/// so a killed, frozen or cut-off instance loses its partitions when its lease runs out, whatever its own clock says or its
/// TCP connections do. Each round an instance registers itself, renews what it holds (under the epoch it holds it by),
/// takes free or lapsed partitions up to its share (the partitions ÷ the live instances, rounded up), and hands back
/// what is beyond its share once nothing of it is in flight. A taken-over partition has a new epoch: the old owner's
/// renewal and progress writes are refused from then on (<see cref="OutboxDispatcher"/> records progress only under
/// the epoch in the same statement). Locally a lease is trusted only until a margin before the database's expiry, on
/// the monotonic clock: an instance that was frozen stops publishing on waking until it has renewed.
/// </summary>
internal sealed partial class OutboxPartitions(NpgsqlDataSource dataSource, ILogger<OutboxPartitions> logger)
{
    private const string SeedSql = """
        INSERT INTO outbox_partitions (partition_id, epoch)
        SELECT g, 0 FROM generate_series(0, $1 - 1) g WHERE NOT EXISTS (SELECT 1 FROM outbox_partitions)
        ON CONFLICT DO NOTHING
        """;

    private const string CountSql = "SELECT count(*)::int FROM outbox_partitions";

    private const string RegisterSql = """
        INSERT INTO outbox_instances (instance_id, expires_at) VALUES ($1, now() + $2)
        ON CONFLICT (instance_id) DO UPDATE SET expires_at = excluded.expires_at
        RETURNING 1
        """;

    private const string RenewSql = """
        UPDATE outbox_partitions p SET lease_expires_at = now() + $2
        FROM unnest($3::int[], $4::bigint[]) AS h(partition_id, epoch)
        WHERE p.partition_id = h.partition_id AND p.epoch = h.epoch AND p.owner_instance = $1
        RETURNING p.partition_id
        """;

    private const string LiveSql = "SELECT count(*)::int FROM outbox_instances WHERE expires_at > now()";

    // Free or lapsed partitions (or ones a previous process of this same instance id left), lowest first; rows another
    // instance is claiming right now are skipped.
    private const string ClaimSql = """
        WITH free AS (
            SELECT partition_id FROM outbox_partitions
            WHERE owner_instance IS NULL OR lease_expires_at < now() OR (owner_instance = $1 AND partition_id <> ALL($3))
            ORDER BY partition_id
            LIMIT $4
            FOR UPDATE SKIP LOCKED)
        UPDATE outbox_partitions p SET owner_instance = $1, epoch = p.epoch + 1, lease_expires_at = now() + $2
        FROM free WHERE p.partition_id = free.partition_id
        RETURNING p.partition_id, p.epoch
        """;

    private const string ReleaseSql = """
        UPDATE outbox_partitions SET owner_instance = NULL, lease_expires_at = NULL
        WHERE partition_id = $2 AND epoch = $3 AND owner_instance = $1
        """;

    private const string ReleaseAllSql = "UPDATE outbox_partitions SET owner_instance = NULL, lease_expires_at = NULL WHERE owner_instance = $1";

    private const string UnregisterSql = "DELETE FROM outbox_instances WHERE instance_id = $1 OR expires_at < now() - interval '1 day'";

    private volatile Dictionary<int, HeldPartition> _held = [];
    private volatile int _count;

    /// <summary>How many partitions there are (agent id mod this); 0 until the first round read it.</summary>
    public int Count => _count;

    /// <summary>What this instance holds as of its last round.</summary>
    public IReadOnlyDictionary<int, HeldPartition> Held => _held;

    public int PartitionOf(int agentId) => _count == 0 ? -1 : agentId % _count;

    /// <summary>This instance may publish <paramref name="agentId"/>'s events now.</summary>
    public bool Publishes(int agentId) =>
        _count > 0 && _held.TryGetValue(agentId % _count, out var held) && held.IsPublishable(Stopwatch.GetTimestamp());

    /// <summary>One round: register, renew, then take or hand back toward this instance's share.</summary>
    /// <param name="settled">Whether nothing of a draining partition is in flight or unrecorded any more (it may be released).</param>
    public async Task<LeaseChanges> RenewAndBalanceAsync(
        string instanceId, int configuredCount, TimeSpan leaseDuration, Func<int, bool> settled, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var validUntil = started + (long)((leaseDuration - Margin(leaseDuration)).TotalSeconds * Stopwatch.Frequency);
        var before = _held;
        var held = new Dictionary<int, HeldPartition>();
        var lost = new List<int>();
        var acquired = new List<int>();
        var released = new List<int>();

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (_count == 0)
        {
            await using (var seed = new NpgsqlCommand(SeedSql, connection) { Parameters = { Int(configuredCount) } })
            {
                await seed.ExecuteNonQueryAsync(cancellationToken);
            }

            await using var counting = new NpgsqlCommand(CountSql, connection);
            var count = (int)(await counting.ExecuteScalarAsync(cancellationToken))!;
            if (count != configuredCount)
            {
                LogPartitionCountDiffers(count, configuredCount);
            }

            _count = count;
        }

        // Register, renew and count the live instances in one round trip and one transaction.
        var renewed = new HashSet<int>();
        int live;
        await using (var round = new NpgsqlBatch(connection))
        {
            round.BatchCommands.Add(new NpgsqlBatchCommand(RegisterSql) { Parameters = { Text(instanceId), Interval(leaseDuration) } });
            if (before.Count > 0)
            {
                round.BatchCommands.Add(new NpgsqlBatchCommand(RenewSql)
                {
                    Parameters =
                    {
                        Text(instanceId), Interval(leaseDuration),
                        new NpgsqlParameter<int[]> { TypedValue = [.. before.Keys] },
                        new NpgsqlParameter<long[]> { TypedValue = [.. before.Values.Select(h => h.Epoch)] },
                    },
                });
            }

            round.BatchCommands.Add(new NpgsqlBatchCommand(LiveSql));
            await using var reader = await round.ExecuteReaderAsync(cancellationToken);
            // The registration's row; then the renewed partitions (if any were held); then the count.
            await reader.NextResultAsync(cancellationToken);
            if (before.Count > 0)
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    renewed.Add(reader.GetInt32(0));
                }

                await reader.NextResultAsync(cancellationToken);
            }

            await reader.ReadAsync(cancellationToken);
            live = Math.Max(1, reader.GetInt32(0));
        }

        foreach (var (id, partition) in before)
        {
            if (renewed.Contains(id))
            {
                held[id] = partition with { ValidUntil = validUntil };
            }
            else
            {
                lost.Add(id);
            }
        }

        var share = (_count + live - 1) / live;
        if (held.Count < share)
        {
            await using var claim = new NpgsqlCommand(ClaimSql, connection)
            {
                Parameters =
                {
                    Text(instanceId), Interval(leaseDuration),
                    new NpgsqlParameter<int[]> { TypedValue = [.. held.Keys] },
                    Int(share - held.Count),
                },
            };
            await using var reader = await claim.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var id = reader.GetInt32(0);
                held[id] = new HeldPartition(id, reader.GetInt64(1), validUntil, Draining: false);
                acquired.Add(id);
            }
        }
        else if (held.Count > share)
        {
            // Hand back the highest-numbered ones beyond the share: drain first (nothing new sent), release once settled.
            foreach (var id in held.Keys.OrderDescending().Take(held.Count - share).ToList())
            {
                held[id] = held[id] with { Draining = true };
            }
        }

        var active = held.Values.Count(h => !h.Draining);
        foreach (var partition in held.Values.Where(h => h.Draining).OrderBy(h => h.Id).ToList())
        {
            if (active < share)
            {
                // The share grew again (an instance left): keep publishing it.
                held[partition.Id] = partition with { Draining = false };
                active++;
                continue;
            }

            if (!settled(partition.Id))
            {
                continue;
            }

            await using var release = new NpgsqlCommand(ReleaseSql, connection)
            {
                Parameters = { Text(instanceId), Int(partition.Id), new NpgsqlParameter<long> { TypedValue = partition.Epoch } },
            };
            await release.ExecuteNonQueryAsync(cancellationToken);
            held.Remove(partition.Id);
            released.Add(partition.Id);
        }

        _held = held;
        var changes = new LeaseChanges(acquired, lost, released, live, share);
        if (changes.Any)
        {
            LogChanged(acquired.Count, lost.Count, released.Count, held.Count, _count, live);
        }

        return changes;
    }

    /// <summary>Stop publishing everything at once (the database could not be reached for a round: trust ends with the local lease).</summary>
    public void Forget(IEnumerable<int> partitions)
    {
        var held = new Dictionary<int, HeldPartition>(_held);
        foreach (var id in partitions)
        {
            held.Remove(id);
        }

        _held = held;
    }

    /// <summary>Hands every partition back and unregisters, so the other instances take them over at once.</summary>
    public async Task ReleaseAllAsync(string instanceId, CancellationToken cancellationToken)
    {
        _held = [];
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand(ReleaseAllSql) { Parameters = { Text(instanceId) } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand(UnregisterSql) { Parameters = { Text(instanceId) } });
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    private static TimeSpan Margin(TimeSpan leaseDuration) => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, leaseDuration.Ticks / 10));

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };
    private static NpgsqlParameter<int> Int(int value) => new() { TypedValue = value };
    private static NpgsqlParameter<TimeSpan> Interval(TimeSpan value) => new() { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Interval };

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database has {Count} outbox partitions, Outbox__Partitions says {Configured}; using {Count} (changing it needs every instance stopped)")]
    private partial void LogPartitionCountDiffers(int count, int configured);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox partitions: took {Acquired}, {Lost} taken over by another instance, handed back {Released}; this instance now publishes {Held} of {Count} ({Live} live instances)")]
    private partial void LogChanged(int acquired, int lost, int released, int held, int count, int live);
}

/// <summary>What one lease round changed.</summary>
internal sealed record LeaseChanges(IReadOnlyList<int> Acquired, IReadOnlyList<int> Lost, IReadOnlyList<int> Released, int LiveInstances, int Share)
{
    public bool Any => Acquired.Count + Lost.Count + Released.Count > 0;
}
