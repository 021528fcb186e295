namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>
/// Signs out agents that sent no heartbeat for the HeartbeatTimeout switch's time: one pass over all agents
/// every <see cref="Interval"/>, which skips live agents without locking — O(n) per second, nothing per
/// request, so 20,000 agents heartbeating every 30 s cost next to nothing. A change of the timeout applies
/// at the next pass.
/// </summary>
internal sealed class HeartbeatMonitor(AgentDirectory agents, AgentLifecycle lifecycle, Switchboard switches, TimeProvider time)
    : IHostedService, IDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private ITimer? timer;
    private int checking;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        timer = time.CreateTimer(_ => Check(), null, Interval, Interval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        return Task.CompletedTask;
    }

    public void Dispose() => timer?.Dispose();

    internal void Check()
    {
        // A pass that outlasts the interval is not overtaken by the next one.
        if (Interlocked.Exchange(ref checking, 1) == 1)
        {
            return;
        }

        try
        {
            var timeout = switches.Current.HeartbeatTimeout;
            var cutoff = time.GetUtcNow() - timeout;
            foreach (var agent in agents.Unordered)
            {
                if (agent.MayBeSilentSince(cutoff))
                {
                    lifecycle.SignOutIfSilent(agent, timeout);
                }
            }
        }
        finally
        {
            Volatile.Write(ref checking, 0);
        }
    }
}
