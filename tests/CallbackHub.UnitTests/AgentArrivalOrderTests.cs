using CallbackHub.Outbox;

namespace CallbackHub.UnitTests;

/// <summary>
/// One agent's pushes reach the database in the order they reached the store: a copy of a push re-sent by the gateway
/// must not overtake the first copy and be stored again after the agent's next push.
/// </summary>
public sealed class AgentArrivalOrderTests
{
    [Fact]
    public void An_agent_s_first_push_goes_on_at_once_and_other_agents_never_wait_for_it()
    {
        var order = new AgentArrivalOrder();
        var first = new TaskCompletionSource();

        Assert.True(order.Enter(1001, first.Task).IsCompleted);
        Assert.True(order.Enter(1002, new TaskCompletionSource().Task).IsCompleted);
        Assert.Equal(2, order.AgentsUnderWay);
    }

    [Fact]
    public async Task A_second_copy_waits_until_the_first_is_settled_however_it_ended()
    {
        var order = new AgentArrivalOrder();
        var first = new TaskCompletionSource<int>();
        var second = new TaskCompletionSource<int>();
        var third = new TaskCompletionSource<int>();

        Assert.True(order.Enter(1001, first.Task).IsCompleted);
        var secondGoes = order.Enter(1001, second.Task);
        var thirdGoes = order.Enter(1001, third.Task);
        await Task.Delay(50, CancellationToken.None);
        Assert.False(secondGoes.IsCompleted);

        // The second copy gives up before its turn: the third still waits for the first.
        second.SetCanceled();
        await Task.Delay(50, CancellationToken.None);
        Assert.False(thirdGoes.IsCompleted);

        first.SetException(new InvalidOperationException("the commit failed"));
        await secondGoes.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        await thirdGoes.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(1, order.AgentsUnderWay);

        third.SetResult(3);
        await WaitUntilAsync(() => order.AgentsUnderWay == 0);
    }

    [Fact]
    public async Task A_turn_comes_only_when_every_push_before_it_is_settled_whatever_order_they_settle_in()
    {
        var order = new AgentArrivalOrder();
        var pushes = Enumerable.Range(0, 5).Select(_ => new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously)).ToList();
        var turns = pushes.Select(push => order.Enter(7, push.Task)).ToList();

        Assert.True(turns[0].IsCompleted);
        await AssertWaitingAsync(turns, 1);

        // Settled out of order: the third push's end frees nobody while the first two are under way.
        pushes[2].SetResult(2);
        await AssertWaitingAsync(turns, 1);

        pushes[0].SetResult(0);
        await turns[1].WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        await AssertWaitingAsync(turns, 2);

        // The second one settled: the third's turn and the fourth's (the third is settled already), not the fifth's.
        pushes[1].SetResult(1);
        await Task.WhenAll(turns[2], turns[3]).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        await AssertWaitingAsync(turns, 4);

        pushes[3].SetResult(3);
        await turns[4].WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        pushes[4].SetResult(4);
        await WaitUntilAsync(() => order.AgentsUnderWay == 0);
    }

    /// <summary>Turns from <paramref name="first"/> on have not come, after a moment for any continuation to run.</summary>
    private static async Task AssertWaitingAsync(List<Task> turns, int first)
    {
        await Task.Delay(50, CancellationToken.None);
        for (var i = first; i < turns.Count; i++)
        {
            Assert.False(turns[i].IsCompleted, $"turn {i} came too early");
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(10, CancellationToken.None);
        }

        Assert.True(condition());
    }
}
