using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using CallbackHub.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace CallbackHub.IntegrationTests;

/// <summary>A database left by the version before the append-only outbox (progress in <c>agent_events.published_at</c>) is upgraded without losing an event.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class OutboxUpgradeTests(PostgresFixture postgres, RabbitMqFixture rabbitMq)
{
    private const string PreviousMigration = "20261202055623_SessionsAtScale";

    [Fact]
    public async Task Upgrading_keeps_every_stored_event_and_publishes_exactly_what_was_unpublished()
    {
        var database = await postgres.CreateDatabaseAsync("upgrade");
        var broker = await rabbitMq.CreateVirtualHostAsync("upgrade");
        await using (var db = new CallbackHubDbContext(new DbContextOptionsBuilder<CallbackHubDbContext>().UseNpgsql(database).Options))
        {
            await db.GetService<IMigrator>().MigrateAsync(PreviousMigration);
        }

        // What the previous version left: agent 1001's events 3 and 4 stored but not yet confirmed, agent 1002 all published.
        await EventRows.ScalarAsync<int>(database, """
            INSERT INTO agent_streams (agent_id, last_sequence) VALUES (1001, 4), (1002, 2);
            INSERT INTO agent_events (event_id, agent_id, sequence, event_type, content, received_at, published_at) VALUES
                (gen_random_uuid(), 1001, 1, 'AgentOther_InService', 'null', now(), now()),
                (gen_random_uuid(), 1001, 2, 'AgentState_Ready', 'null', now(), now()),
                (gen_random_uuid(), 1001, 3, 'AgentEvent_Ringing', '{"callid":"1"}', now(), NULL),
                (gen_random_uuid(), 1001, 4, 'AgentEvent_Talking', '{"callid":"1"}', now(), NULL),
                (gen_random_uuid(), 1002, 1, 'AgentOther_InService', 'null', now(), now()),
                (gen_random_uuid(), 1002, 2, 'AgentState_Ready', 'null', now(), now());
            """);

        await using var consumer = await QueueProbe.StartAsync(broker);
        await using var gateway = await SimulatorInstance.StartAsync();
        await using var hub = await CallbackHubInstance.StartAsync(database, broker, gateway.BaseUri);

        await consumer.WaitForAsync(2, TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(1)); // anything published twice or wrongly would arrive by now
        Assert.Equal([(1001, 3L, "AgentEvent_Ringing"), (1001, 4L, "AgentEvent_Talking")],
            consumer.Received.Select(m => (m.Message.AgentId, m.Message.Sequence, m.Message.EventType)));
        var rows = await EventRows.WaitUntilPublishedAsync(database);
        Assert.Equal(6, rows.Count);
        Assert.All(rows, r => Assert.True(r.Published));
    }
}
