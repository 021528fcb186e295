namespace CallbackHub.Outbox;

/// <summary>
/// Keeps one agent's pushes on this instance in the order they reached the store: each waits until the one before it is
/// settled (committed, refused, or dropped before it was sent) before it goes further. Without this, two copies of a push
/// (the gateway re-sends a batch whose answer it did not get in time) can overtake each other — one waits for the
/// publisher's room or sits in a slower commit group while the other is stored, answered, and followed by the agent's next
/// push — and the late copy no longer matches the agent's last batch, so it is stored a second time, after newer events.
/// The gateway sends an agent's next push only after the answer to this one, so the wait is nearly always for nothing
/// (no push before it): a dictionary look-up under a lock.
/// </summary>
internal sealed class AgentArrivalOrder
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, Turns> _agents = [];

    /// <summary>Agents with a push under way here (the tests check that finished agents are forgotten).</summary>
    public int AgentsUnderWay
    {
        get
        {
            lock (_gate)
            {
                return _agents.Count;
            }
        }
    }

    /// <summary>
    /// Takes the agent's next turn: the task returned completes once every push that entered before is settled (it never
    /// faults). <paramref name="settled"/> completes (in any state) once this push is settled; the agent's next push waits
    /// for it, and for every push before it.
    /// </summary>
    public Task Enter(int agentId, Task settled)
    {
        lock (_gate)
        {
            if (!_agents.TryGetValue(agentId, out var turns))
            {
                turns = new Turns();
                _agents[agentId] = turns;
            }

            var before = turns.Last;
            turns.Holders++;
            turns.Last = AfterAsync(agentId, turns, before, settled);
            return before;
        }
    }

    private async Task AfterAsync(int agentId, Turns turns, Task before, Task settled)
    {
        await before;
        await settled.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_gate)
        {
            if (--turns.Holders == 0)
            {
                _agents.Remove(agentId);
            }
        }
    }

    private sealed class Turns
    {
        public Task Last { get; set; } = Task.CompletedTask;
        public int Holders { get; set; }
    }
}
