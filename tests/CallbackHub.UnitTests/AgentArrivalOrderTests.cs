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
    public async Task Turns_are_given_in_the_order_they_were_taken()
    {
        var order = new AgentArrivalOrder();
        var pushes = Enumerable.Range(0, 50).Select(_ => new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously)).ToList();
        var went = new List<int>();
        var runs = pushes.Select((push, i) => RunAsync(order.Enter(7, push.Task), push, i)).ToList();

        await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, 50), went);
        await WaitUntilAsync(() => order.AgentsUnderWay == 0);

        async Task RunAsync(Task turn, TaskCompletionSource<int> push, int index)
        {
            await turn;
            lock (went)
            {
                went.Add(index);
            }

            await Task.Yield();
            push.SetResult(index);
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
