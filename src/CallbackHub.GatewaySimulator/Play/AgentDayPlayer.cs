using System.Globalization;
using CallbackHub.GatewaySimulator.Agents;
using CallbackHub.GatewaySimulator.Pushing;
using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator.Play;

/// <summary>
/// Plays agent days at a steady total rate through the normal push queues (so batching, retries and
/// forced sign-out apply as for any event). Started at boot from Simulator:Play or by the control API.
/// </summary>
internal sealed class AgentDayPlayer(
    AgentDirectory agents,
    PushDelivery delivery,
    IOptions<SimulatorOptions> options,
    TimeProvider time,
    ILogger<AgentDayPlayer> logger) : IHostedService, IDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    private readonly SemaphoreSlim switching = new(1, 1);
    private CancellationTokenSource? stop;
    private Task? loop;
    private PlaySettings? settings;
    private DateTimeOffset? startedAt;
    private long played;

    public PlayStatus Status => new(loop is { IsCompleted: false }, settings, startedAt, Interlocked.Read(ref played));

    public async Task<PlayStatus> StartAsync(PlaySettings newSettings)
    {
        await switching.WaitAsync();
        try
        {
            await StopLoopAsync();
            settings = newSettings;
            startedAt = time.GetUtcNow();
            Interlocked.Exchange(ref played, 0);
            stop = new CancellationTokenSource();
            loop = Task.Run(() => RunAsync(newSettings, stop.Token));
            logger.LogInformation("Playing agent days at {EventsPerSecond} events/s", newSettings.EventsPerSecond);
            return Status;
        }
        finally
        {
            switching.Release();
        }
    }

    public async Task<PlayStatus> StopAsync()
    {
        await switching.WaitAsync();
        try
        {
            await StopLoopAsync();
            return Status;
        }
        finally
        {
            switching.Release();
        }
    }

    Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        var play = options.Value.Play;
        return play.EventsPerSecond > 0
            ? StartAsync(new PlaySettings(play.EventsPerSecond, play.Agents, play.FirstAgentId, Seed: play.Seed))
            : Task.CompletedTask;
    }

    Task IHostedService.StopAsync(CancellationToken cancellationToken) => StopAsync();

    public void Dispose()
    {
        stop?.Dispose();
        switching.Dispose();
    }

    private async Task StopLoopAsync()
    {
        if (stop is null || loop is null)
        {
            return;
        }

        await stop.CancelAsync();
        try
        {
            await loop;
        }
        catch (OperationCanceledException)
        {
            // The loop ends by cancellation.
        }

        stop.Dispose();
        stop = null;
    }

    private async Task RunAsync(PlaySettings play, CancellationToken cancellationToken)
    {
        var random = play.Seed is { } seed ? new Random(seed) : new Random();
        var scripts = new Dictionary<AgentSession, IEnumerator<SimulatedEvent>>();
        var start = time.GetUtcNow();
        long emitted = 0;
        var cursor = 0;
        try
        {
            while (true)
            {
                await Task.Delay(Tick, time, cancellationToken);
                var target = (long)(play.EventsPerSecond * (time.GetUtcNow() - start).TotalSeconds);

                // After a stall, play at most one second's worth at once rather than a burst of the backlog.
                emitted = Math.Max(emitted, target - Math.Max(1, (long)play.EventsPerSecond));
                var playing = PlayingSessions(play);
                for (; emitted < target; emitted++)
                {
                    if (playing.Count == 0)
                    {
                        emitted = target;
                        break;
                    }

                    var (agent, session) = playing[cursor++ % playing.Count];
                    var next = NextEvent(scripts, session, random);
                    delivery.Enqueue(agent, session, [next with { EventGenTime = time.GetUtcNow().ToUnixTimeMilliseconds() }]);
                    Interlocked.Increment(ref played);
                }

                Forget(scripts, playing);
            }
        }
        finally
        {
            foreach (var script in scripts.Values)
            {
                script.Dispose();
            }
        }
    }

    private List<(Agent Agent, AgentSession Session)> PlayingSessions(PlaySettings play)
    {
        IEnumerable<Agent?> chosen = play switch
        {
            { AgentIds: { Count: > 0 } ids } => ids.Select(agents.Find),
            { Agents: > 0 } => Enumerable.Range(play.FirstAgentId, play.Agents)
                .Select(id => agents.Find(id.ToString(CultureInfo.InvariantCulture))),
            _ => agents.All,
        };
        var playing = new List<(Agent, AgentSession)>();
        foreach (var agent in chosen)
        {
            if (agent?.Current is { IsPush: true } session)
            {
                playing.Add((agent, session));
            }
        }

        return playing;
    }

    private SimulatedEvent NextEvent(Dictionary<AgentSession, IEnumerator<SimulatedEvent>> scripts, AgentSession session, Random random)
    {
        if (!scripts.TryGetValue(session, out var script))
        {
            script = AgentDayScript.Events(session.PhoneNumber, random, time).GetEnumerator();
            scripts[session] = script;
        }

        script.MoveNext();
        return script.Current;
    }

    // Sessions that ended no longer play; a new sign-in of the agent starts a fresh day.
    private static void Forget(Dictionary<AgentSession, IEnumerator<SimulatedEvent>> scripts, List<(Agent Agent, AgentSession Session)> playing)
    {
        if (scripts.Count <= playing.Count)
        {
            return;
        }

        var live = playing.Select(p => p.Session).ToHashSet();
        foreach (var ended in scripts.Keys.Where(s => !live.Contains(s)).ToList())
        {
            scripts[ended].Dispose();
            scripts.Remove(ended);
        }
    }
}
