using System.Diagnostics;
using System.Globalization;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// When the broker confirms slower than pushes arrive, the events committed here wait in memory for the confirm window, and
/// once that queue is full a new push waits (briefly) before it is stored: never refused, nothing lost, order kept.
/// </summary>
public sealed class BackpressureTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private static readonly TimeSpan Wait = TimeSpan.FromMilliseconds(800);

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Outbox:MaxInFlight"] = "2",
        ["Outbox:MaxQueued"] = "2",
        ["Outbox:IngestWaitWhenBehind"] = Wait.ToString("c", CultureInfo.InvariantCulture),
        // Long enough that the stalled confirms are not timed out while the test looks at the queue.
        ["Outbox:PublishTimeout"] = "00:00:30",
    };

    [Fact]
    public async Task While_the_broker_is_behind_pushes_wait_before_they_are_stored_and_every_event_arrives_in_order()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        await consumer.WaitForAsync(2);

        var acks = new List<TimeSpan>();
        // A memory alarm: the broker takes no publishes (so confirms none) until it is cleared.
        await RabbitMq.RabbitMqCtlAsync("set_vm_memory_high_watermark", "0.0000001");
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1)); // the alarm reaches the connection
            for (var i = 0; i < 7; i++)
            {
                var started = Stopwatch.GetTimestamp();
                var (status, body) = await Gateway.PushOnceAsync(Agent, [Event("AgentEvent_Ringing", new { callid = $"{i}" }), Event("AgentState_Work")]);
                acks.Add(Stopwatch.GetElapsedTime(started));
                Assert.Equal(200, status);
                Assert.Equal("0", body!["retcode"]!.GetValue<string>());
                if (i == 0)
                {
                    // The first push's events fill the confirm window (they are sent, and never confirmed).
                    await MetricsWhenAsync(m => Sample(m, "callbackhub_outbox_confirms_in_flight") == 2);
                }
            }

            // 2 events in the confirm window, then 2 queued in memory (Outbox__MaxQueued): from then on each push waited its
            // full time and was stored; the queue took 4 × 2 events, the last two pushes' went beyond it (read back later).
            var metrics = await MetricsWhenAsync(m => Sample(m, "callbackhub_outbox_queued") == 8);
            Assert.Equal(2, Sample(metrics, "callbackhub_outbox_confirms_in_flight"));
            Assert.True(Sample(metrics, "callbackhub_outbox_ingest_waits_total") >= 5, metrics);
            Assert.All(acks.Take(2), a => Assert.True(a < Wait, $"the first pushes found room: {string.Join(", ", acks)}"));
            Assert.All(acks.Skip(2), a => Assert.True(a >= Wait * 0.9, $"later pushes waited for the publisher: {string.Join(", ", acks)}"));
            Assert.Equal(16, await EventRows.ScalarAsync<long>(Database, "SELECT count(*) FROM agent_events"));
        }
        finally
        {
            await RabbitMq.RabbitMqCtlAsync("set_vm_memory_high_watermark", "0.4");
        }

        // Queued, read back beyond the queue: each event once, in sequence.
        var expected = Enumerable.Range(1, 16).Select(i => (long)i).ToList();
        var messages = await consumer.WaitForAsync(16, TimeSpan.FromSeconds(60));
        Assert.Equal(expected, messages.Select(m => m.Message.Sequence).ToList());
        Assert.All(await EventRows.WaitUntilPublishedAsync(Database, TimeSpan.FromSeconds(30)), r => Assert.True(r.Published));
    }

    private Task<string> MetricsWhenAsync(Func<string, bool> condition) =>
        PrometheusText.EventuallyAsync(Hub.MetricsAsync, condition, TimeSpan.FromSeconds(10));

    private static double Sample(string metrics, string name) => PrometheusText.Sample(metrics, name);
}
