using System.Text;
using CallbackHub.Contracts;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using RabbitMQ.Client;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The outbox's publishing, as a consumer and an operator see it: every stored event publishable, nothing unrouted lost,
/// a slow broker given no extra copies, an event table that is only ever appended to.
/// </summary>
public sealed class PublishingTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    [Fact]
    public async Task An_event_type_too_long_for_a_routing_key_is_published_with_a_shortened_key_and_the_agent_goes_on()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        await consumer.WaitForAsync(2); // the sign-in events first, so the push below is events 3–5
        // 128 characters without '_' (the category is the whole type) would make a 262-byte key; 128 'é' one of 519 bytes.
        var ascii = new string('A', 128);
        var accented = new string('é', 128);
        var (status, _) = await Gateway.PushOnceAsync(Agent, [Event(ascii), Event(accented, new { n = 1 }), Event("AgentState_Ready")]);
        Assert.Equal(200, status);

        var messages = await consumer.WaitForAsync(5, TimeSpan.FromSeconds(30));
        Assert.Equal([1L, 2, 3, 4, 5], messages.Select(m => m.Message.Sequence));
        Assert.Equal([ascii, accented, "AgentState_Ready"], messages.Skip(2).Select(m => m.Message.EventType));
        Assert.All(messages, m => Assert.InRange(Encoding.UTF8.GetByteCount(m.RoutingKey), 1, AgentEventTopology.MaxRoutingKeyBytes));
        Assert.EndsWith($".{Agent}", messages[2].RoutingKey, StringComparison.Ordinal);
        Assert.NotEqual(messages[2].RoutingKey, messages[3].RoutingKey);
    }

    [Fact]
    public async Task With_no_queue_bound_the_messages_are_kept_in_the_unrouted_queue()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2); // the sign-in events first (the gateway pushes them on its own), so the push below is event 3
        var (status, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work")]);
        Assert.Equal(200, status);
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database, TimeSpan.FromSeconds(30)), r => Assert.True(r.Published));

        var unrouted = await DrainAsync("callbackhub.unrouted");
        Assert.Equal([1L, 2, 3], unrouted.Select(m => m.Message.Sequence));
        Assert.Equal("AgentState_Work", unrouted[2].Message.EventType);
    }

    [Fact]
    public async Task The_event_table_is_only_appended_to()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        for (var i = 0; i < 5; i++)
        {
            await Gateway.PushOnceAsync(Agent, [Event("AgentEvent_Ringing", new { callid = $"{i}" }), Event("AgentEvent_Call_Release", $"{i}")]);
        }

        await consumer.WaitForAsync(12, TimeSpan.FromSeconds(30));
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database), r => Assert.True(r.Published));
        // Statistics reach pg_stat_user_tables within a second or so of each transaction: wait for the inserts to show.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        long inserted;
        do
        {
            await Task.Delay(250);
            inserted = await EventRows.ScalarAsync<long>(Database, "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'agent_events'");
        }
        while (inserted < 12 && DateTime.UtcNow < deadline);

        Assert.Equal(12, inserted);
        Assert.Equal(0, await EventRows.ScalarAsync<long>(Database, "SELECT n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = 'agent_events'"));

        // The agent's stream row is updated by every push and every progress write: HOT updates (no index entries written),
        // which an index on a column they change (such as one on "unpublished") would rule out.
        long updated, hot;
        do
        {
            await Task.Delay(250);
            updated = await EventRows.ScalarAsync<long>(Database, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'agent_streams'");
            hot = await EventRows.ScalarAsync<long>(Database, "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'agent_streams'");
        }
        while (updated < 6 && DateTime.UtcNow < deadline + TimeSpan.FromSeconds(15));

        Assert.InRange(updated, 6, long.MaxValue); // five pushes and at least one progress write
        Assert.True(hot >= updated * 0.9, $"{hot} of {updated} updates of agent_streams were HOT");
    }

    [Fact]
    public async Task A_broker_that_stops_confirming_gets_no_copy_per_timeout_and_the_events_arrive_in_order_once_it_recovers()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        await consumer.WaitForAsync(2);

        // A memory alarm: the broker stops taking publishes (and so confirming them) until it is cleared.
        await RabbitMq.RabbitMqCtlAsync("set_vm_memory_high_watermark", "0.0000001");
        try
        {
            for (var i = 0; i < 5; i++)
            {
                var (status, body) = await Gateway.PushOnceAsync(Agent, [Event("AgentEvent_Ringing", new { callid = $"{i}" }), Event("AgentState_Work")]);
                Assert.Equal(200, status);
                Assert.Equal("0", body!["retcode"]!.GetValue<string>());
            }

            // Several publish timeouts (3 s in these tests, doubling after each).
            await Task.Delay(TimeSpan.FromSeconds(12));
        }
        finally
        {
            await RabbitMq.RabbitMqCtlAsync("set_vm_memory_high_watermark", "0.4");
        }

        var expected = Enumerable.Range(1, 12).Select(i => (long)i).ToList();
        var messages = await consumer.WaitForAsync(12, TimeSpan.FromSeconds(60));
        Assert.Equal(expected, FirstArrivals(messages.Select(m => m.Message.Sequence)));
        // At most one extra copy of an event, and only of one the broker had taken before it stopped confirming.
        Assert.All(messages.GroupBy(m => m.Message.Sequence), g => Assert.InRange(g.Count(), 1, 2));
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database, TimeSpan.FromSeconds(30)), r => Assert.True(r.Published));
    }

    [Fact]
    public async Task Progress_recorded_under_an_epoch_since_taken_over_is_refused()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2);
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database, TimeSpan.FromSeconds(30)), r => Assert.True(r.Published));
        var partitions = await EventRows.ScalarAsync<long>(Database, "SELECT count(*) FROM outbox_partitions");
        var partition = (int)(Agent % partitions);
        var owner = await EventRows.ScalarAsync<string>(Database, $"SELECT owner_instance FROM outbox_partitions WHERE partition_id = {partition}");
        var epoch = await EventRows.ScalarAsync<long>(Database, $"SELECT epoch FROM outbox_partitions WHERE partition_id = {partition}");

        // Another instance takes the partition over, as it does when this one's lease ran out while it was frozen with
        // the confirm of event 2 not yet recorded.
        await EventRows.ScalarAsync<int>(Database,
            $"UPDATE outbox_partitions SET owner_instance = 'another', epoch = epoch + 1, lease_expires_at = now() + interval '1 minute' WHERE partition_id = {partition}");
        await EventRows.ScalarAsync<int>(Database, $"UPDATE agent_streams SET published_sequence = 1 WHERE agent_id = {Agent}");

        // The frozen owner wakes and records what it had confirmed: refused by the epoch in the same statement.
        Assert.Equal(0, await RecordAsync(owner!, partition, epoch, published: 2));
        Assert.Equal(1, await EventRows.ScalarAsync<long>(Database, $"SELECT published_sequence FROM agent_streams WHERE agent_id = {Agent}"));
        // The same write under the current epoch and owner goes through: the refusal is the fence's.
        Assert.Equal(1, await RecordAsync("another", partition, epoch + 1, published: 2));
        Assert.Equal(2, await EventRows.ScalarAsync<long>(Database, $"SELECT published_sequence FROM agent_streams WHERE agent_id = {Agent}"));
    }

    private async Task<int> RecordAsync(string owner, int partition, long epoch, long published)
    {
        await using var connection = new Npgsql.NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(CallbackHub.Outbox.OutboxDispatcher.RecordSql, connection)
        {
            Parameters =
            {
                new Npgsql.NpgsqlParameter<int[]> { TypedValue = [Agent] },
                new Npgsql.NpgsqlParameter<long[]> { TypedValue = [published] },
                new Npgsql.NpgsqlParameter<int[]> { TypedValue = [partition] },
                new Npgsql.NpgsqlParameter<long[]> { TypedValue = [epoch] },
                new Npgsql.NpgsqlParameter<string> { TypedValue = owner },
            },
        };
        await using var reader = await command.ExecuteReaderAsync();
        var rows = 0;
        while (await reader.ReadAsync())
        {
            rows++;
        }

        return rows;
    }

    /// <summary>Each sequence at its first arrival, in arrival order (later copies left out, nothing sorted).</summary>
    internal static List<long> FirstArrivals(IEnumerable<long> sequences)
    {
        var seen = new HashSet<long>();
        return [.. sequences.Where(seen.Add)];
    }

    private async Task<List<ReceivedEvent>> DrainAsync(string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = new Uri(Broker) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var messages = new List<ReceivedEvent>();
        while (await channel.BasicGetAsync(queue, autoAck: true) is { } message)
        {
            messages.Add(ReceivedEvent.Parse(message.Body.Span, message.RoutingKey));
        }

        return messages;
    }
}
