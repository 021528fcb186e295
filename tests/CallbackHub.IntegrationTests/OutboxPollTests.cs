using System.Diagnostics;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The poll is the backstop for a lost wake-up (another instance's NOTIFY that never came): it reads every agent at least
/// once per <c>Outbox__PollInterval</c>, also while this instance never stops being woken for its own pushes.
/// </summary>
public sealed class OutboxPollTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private const int Other = 1002;

    [Fact]
    public async Task An_event_whose_wake_up_was_lost_is_published_within_a_poll_while_the_load_never_stops()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        await SignInAsync();
        await SignInAsync(Other);
        await consumer.WaitForAsync(4);

        using var stop = new CancellationTokenSource();
        var pushes = PushWithoutPauseAsync(stop.Token);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            // Committed by "another instance" whose NOTIFY was lost: a row and its stream's count, and no wake-up at all.
            await EventRows.ScalarAsync<int>(Database, $"""
                WITH s AS (UPDATE agent_streams SET last_sequence = last_sequence + 1 WHERE agent_id = {Other} RETURNING last_sequence)
                INSERT INTO agent_events (event_id, agent_id, sequence, event_type, content, received_at)
                SELECT gen_random_uuid(), {Other}, s.last_sequence, 'AgentState_Work', jsonb_build_object(), now() FROM s
                """);
            var inserted = Stopwatch.GetTimestamp();

            while (!consumer.Received.Any(e => e.Message.AgentId == Other && e.Message.Sequence == 3))
            {
                Assert.True(Stopwatch.GetElapsedTime(inserted) < TimeSpan.FromSeconds(4),
                    $"agent {Other}'s event was not published within 4 s while agent {Agent}'s pushes kept coming (the poll interval is 1 s)");
                Assert.False(pushes.IsCompleted, "the pushes stopped before the event was published: the test proves nothing");
                await Task.Delay(50);
            }
        }
        finally
        {
            await stop.CancelAsync();
        }

        var pushed = await pushes;
        Assert.True(pushed > 10, $"only {pushed} pushes");
        var all = await consumer.WaitForAsync(4 + pushed + 1, TimeSpan.FromSeconds(30));
        // Agent 1001's events arrived in sequence (nothing sorted): the poll sent nothing twice or out of turn.
        Assert.Equal(Enumerable.Range(1, 2 + pushed).Select(i => (long)i), all.Where(e => e.Message.AgentId == Agent).Select(e => e.Message.Sequence));
    }

    /// <summary>One push of agent 1001 after another (each answered before the next), until stopped; returns how many.</summary>
    private async Task<int> PushWithoutPauseAsync(CancellationToken stop)
    {
        var count = 0;
        while (!stop.IsCancellationRequested)
        {
            var (status, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work", new { n = count }, 1_700_000_000_000 + count)]);
            Assert.Equal(200, status);
            count++;
        }

        return count;
    }
}
