using CallbackHub.Outbox;
using Microsoft.Extensions.Options;

namespace CallbackHub.UnitTests;

/// <summary>Pushes wait their turn while the publisher is behind, never longer than the setting, and never for another instance.</summary>
public sealed class OutboxBackpressureTests
{
    private static OutboxBackpressure Create(int maxQueued, TimeSpan wait, Func<int, bool>? publishes = null) =>
        new(publishes ?? (_ => true), Options.Create(new OutboxOptions { MaxQueued = maxQueued, IngestWaitWhenBehind = wait }));

    [Fact]
    public async Task Pushes_are_let_in_while_there_is_room_then_in_arrival_order_as_the_publisher_catches_up()
    {
        var backpressure = Create(maxQueued: 6, wait: TimeSpan.FromMinutes(1));
        using (await backpressure.EnterAsync(1, 3, CancellationToken.None))
        {
            backpressure.Added(3); // committed and handed over: counted once it is disposed
        }

        using var second = await backpressure.EnterAsync(2, 3, CancellationToken.None);
        var big = backpressure.EnterAsync(3, 3, CancellationToken.None).AsTask();
        var small = backpressure.EnterAsync(4, 1, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(big.IsCompleted);
        Assert.False(small.IsCompleted); // room for 1 would do, but it came after the push of 3

        backpressure.Removed(3); // the first push's events were sent
        (await big.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        (await small.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        Assert.Equal(2, backpressure.Waits);
    }

    [Fact]
    public async Task A_push_waits_at_most_the_setting_then_goes_on()
    {
        var backpressure = Create(maxQueued: 2, wait: TimeSpan.FromMilliseconds(300));
        backpressure.Added(2);
        var started = DateTime.UtcNow;
        using (await backpressure.EnterAsync(1, 1, CancellationToken.None))
        {
            Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
        }

        // Turned off, or another instance's agent: no wait at all.
        using (await Create(2, TimeSpan.Zero).EnterAsync(1, 5, CancellationToken.None))
        {
        }

        var other = Create(maxQueued: 2, wait: TimeSpan.FromMinutes(1), publishes: id => id != 7);
        other.Added(2);
        var entering = other.EnterAsync(7, 1, CancellationToken.None).AsTask();
        Assert.True(entering.IsCompletedSuccessfully);
        (await entering).Dispose();
    }

    [Fact]
    public async Task A_push_that_gives_up_waiting_leaves_its_place_to_the_next()
    {
        var backpressure = Create(maxQueued: 2, wait: TimeSpan.FromMinutes(1));
        backpressure.Added(2);
        using var cancel = new CancellationTokenSource();
        var gaveUp = backpressure.EnterAsync(1, 2, cancel.Token).AsTask();
        var next = backpressure.EnterAsync(2, 2, CancellationToken.None).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gaveUp);

        backpressure.Removed(2);
        (await next.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        // Nothing of the push that gave up is still counted: a push as large as the whole room is let in at once.
        using var last = await backpressure.EnterAsync(3, 2, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
    }
}
