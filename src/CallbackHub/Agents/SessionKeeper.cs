using System.Collections.Concurrent;
using System.Diagnostics;
using CallbackHub.Gateway;
using CallbackHub.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Agents;

/// <summary>
/// Keeps every agent in push mode. Every <see cref="SessionKeepingOptions.KeeperInterval"/> a round renews this
/// instance's leases and balances them with the other instances (<see cref="SessionLeases"/>), then queues what is due
/// for the sessions it owns — heartbeats first, then sign-ins — for workers that do it concurrently, as many as the
/// gateway takes calls (<see cref="GatewayOptions.MaxConcurrentCalls"/>). A round never waits for that work, so a slow
/// gateway never lets a lease lapse; an agent's failure is its own, never the round's.
/// </summary>
internal sealed partial class SessionKeeper(
    IServiceScopeFactory scopes,
    SessionLeases leases,
    NpgsqlDataSource dataSource,
    Roster roster,
    IOptions<SessionKeepingOptions> options,
    IOptions<GatewayOptions> gatewayOptions,
    TimeProvider time,
    ILogger<SessionKeeper> logger) : BackgroundService, IHostedLifecycleService
{
    private const string RosterStatesSql = "SELECT agent_id, state FROM agent_sessions WHERE agent_id = ANY($1)";

    private readonly ConcurrentQueue<int> _heartbeats = new();
    private readonly ConcurrentQueue<int> _signIns = new();

    // One count per queued item: each wakes exactly one worker (no herd of idle workers at every item).
    private readonly SemaphoreSlim _queued = new(0);
    private readonly ConcurrentDictionary<int, byte> _inFlight = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _workers = [];
    private long _leasesSafeUntil;
    private bool _rosterQueued;

    private SessionKeepingOptions Options => options.Value;

    private Task _pacing = Task.CompletedTask;

    /// <summary>Sessions this instance owns after its last round (for the log and tests).</summary>
    public int Owned { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Options.KeeperEnabled)
        {
            return;
        }

        using var both = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, _stopping.Token);
        for (var i = 0; i < gatewayOptions.Value.MaxConcurrentCalls; i++)
        {
            _workers.Add(Task.Run(() => WorkAsync(both.Token), CancellationToken.None));
        }

        while (!both.IsCancellationRequested)
        {
            try
            {
                await RoundAsync(both.Token);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException
                                       || (e is OperationCanceledException && !both.IsCancellationRequested))
            {
                LogRoundFailed(e);
            }

            await Task.Delay(Options.KeeperInterval, time, both.Token).ContinueWith(static _ => { }, TaskScheduler.Default);
        }

        await _pacing;
        await Task.WhenAll(_workers);
    }

    /// <summary>One round, with the work it finds done before it returns: for tests that drive the keeper by hand.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        var (signIns, due) = await PlanAsync(cancellationToken);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = gatewayOptions.Value.MaxConcurrentCalls, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(signIns, parallel, async (agentId, token) => await SignInRosterAgentAsync(agentId, token));
        await Parallel.ForEachAsync(due, parallel, async (agentId, token) => await KeepAsync(agentId, token));
    }

    private async Task RoundAsync(CancellationToken cancellationToken)
    {
        var (signIns, due) = await PlanAsync(cancellationToken);
        foreach (var agentId in signIns)
        {
            _signIns.Enqueue(agentId);
            _queued.Release();
        }

        // The last round's pacing is over by now (it spans less than a round); this round's starts.
        await _pacing;
        _pacing = PaceAsync([.. due.Where(id => _inFlight.TryAdd(id, 0))], cancellationToken);
    }

    /// <summary>
    /// Hands a round's due work to the workers spread over most of the round, most overdue first: all at once, a round's
    /// heartbeats (a sixth of all sessions with the defaults) would take every core and database connection for a moment
    /// every round, and pushes answered in that moment would wait (measured: ack p99 131 ms at 1,000 agents, 29 ms spread).
    /// </summary>
    private async Task PaceAsync(List<int> due, CancellationToken cancellationToken)
    {
        var spacing = due.Count == 0 ? TimeSpan.Zero : Options.KeeperInterval * 0.8 / due.Count;
        var start = time.GetTimestamp();
        try
        {
            for (var i = 0; i < due.Count; i++)
            {
                var wait = (spacing * i) - time.GetElapsedTime(start);
                if (wait > TimeSpan.FromMilliseconds(1))
                {
                    await Task.Delay(wait, time, cancellationToken);
                }

                _heartbeats.Enqueue(due[i]);
                _queued.Release();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: what was not handed out is not in flight.
            foreach (var agentId in due)
            {
                if (!_heartbeats.Contains(agentId))
                {
                    _inFlight.TryRemove(agentId, out _);
                }
            }
        }
    }

    /// <summary>Renews and balances the leases, then names what is due: roster sign-ins (once) and owned sessions.</summary>
    private async Task<(List<int> SignIns, List<int> Due)> PlanAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var round = await leases.RenewAndBalanceAsync(Options.InstanceId, Options.LeaseDuration, _inFlight.Keys.ToList(), cancellationToken);
        // The leases run until the database's now() + LeaseDuration, and that now() came after `started`: until then
        // (less a margin), this instance may act for them. A frozen process finds this passed when it wakes.
        Volatile.Write(ref _leasesSafeUntil, started + (long)((Options.LeaseDuration - Options.KeeperInterval).TotalSeconds * Stopwatch.Frequency));
        if (round.Taken > 0 || round.Released > 0 || round.Owned != Owned)
        {
            LogLeases(round.Owned, round.Share, round.Instances, round.Taken, round.Released);
        }

        Owned = round.Owned;
        var signIns = _rosterQueued ? [] : await RosterToSignInAsync(cancellationToken);
        _rosterQueued = true;

        var now = time.GetUtcNow();
        var due = (await leases.ReadOwnedAsync(Options.InstanceId, cancellationToken))
            .Where(s => SessionRules.IsDue(Options, s.State, s.LastAnswer, s.NextSignInAt, s.UpdatedAt, now))
            // Heartbeats most overdue first.
            .OrderBy(s => s.LastAnswer ?? DateTimeOffset.MinValue)
            .Select(s => s.AgentId)
            .ToList();
        return (signIns, due);
    }

    /// <summary>Roster agents with no live session (never signed in, signed out, or failed): resumed ones stay as they are.</summary>
    private async Task<List<int>> RosterToSignInAsync(CancellationToken cancellationToken)
    {
        var ids = roster.Agents.Select(a => a.AgentId).ToArray();
        if (ids.Length == 0)
        {
            return [];
        }

        var live = new HashSet<int>();
        await using var command = dataSource.CreateCommand(RosterStatesSql);
        command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = ids });
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                if (AgentSessionStates.Parse(reader.GetString(1)) is not (AgentSessionState.SignedOut or AgentSessionState.Failed))
                {
                    live.Add(reader.GetInt32(0));
                }
            }
        }

        return ids.Where(id => !live.Contains(id)).ToList();
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await _queued.WaitAsync(cancellationToken);
                // Heartbeats before sign-ins: a mass sign-in (start, a gateway back from an outage) never starves them.
                if (_heartbeats.TryDequeue(out var agentId))
                {
                    try
                    {
                        if (Stopwatch.GetTimestamp() < Volatile.Read(ref _leasesSafeUntil))
                        {
                            await KeepAsync(agentId, cancellationToken);
                        }
                    }
                    finally
                    {
                        _inFlight.TryRemove(agentId, out _);
                    }
                }
                else if (_signIns.TryDequeue(out agentId))
                {
                    await SignInRosterAgentAsync(agentId, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>One agent's due work, in its own scope; whatever goes wrong stays with that agent.</summary>
    private async Task KeepAsync(int agentId, CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<SessionKeeping>().KeepAsync(agentId, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogAgentFailed(e, agentId);
        }
    }

    private async Task SignInRosterAgentAsync(int agentId, CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<SignIns>().SignInAsync(agentId, roster.Get(agentId), automatic: true, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogAgentFailed(e, agentId);
        }
    }

    /// <summary>
    /// On SIGTERM, before the web server stops: no new work is started and what is under way finishes; then this
    /// instance's agents are signed out, or (when another instance is to keep them) their leases handed back so that
    /// it takes over at once. A crash does neither: the leases lapse and another instance takes over.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (!Options.KeeperEnabled)
        {
            return;
        }

        await _stopping.CancelAsync();
        await Task.WhenAll(_workers).WaitAsync(gatewayOptions.Value.Timeout * 2, cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Default);
        try
        {
            if (Options.SignOutOnShutdown)
            {
                var active = (await leases.ReadOwnedAsync(Options.InstanceId, cancellationToken))
                    .Where(s => s.State == AgentSessionState.Active).Select(s => s.AgentId).ToList();
                var parallel = new ParallelOptions { MaxDegreeOfParallelism = gatewayOptions.Value.MaxConcurrentCalls, CancellationToken = cancellationToken };
                await Parallel.ForEachAsync(active, parallel, async (agentId, token) =>
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var outcome = await scope.ServiceProvider.GetRequiredService<SignIns>().SignOutAsync(agentId, token);
                    LogShutdownSignOut(agentId, outcome.Problem?.Detail ?? "signed out");
                });
            }

            await leases.ReleaseAllAsync(Options.InstanceId, cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            LogShutdownFailed(e);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Dispose()
    {
        _stopping.Dispose();
        _queued.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session keeping round failed; next round in a moment")]
    private partial void LogRoundFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Keeping the session of agent {AgentId} failed; the other agents go on")]
    private partial void LogAgentFailed(Exception exception, int agentId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Keeping {Owned} sessions (share {Share} of {Instances} instances; took {Taken}, handed back {Released})")]
    private partial void LogLeases(int owned, int share, int instances, int taken, int released);

    [LoggerMessage(Level = LogLevel.Information, Message = "Shutting down: agent {AgentId}: {Outcome}")]
    private partial void LogShutdownSignOut(int agentId, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down: could not sign agents out or release their leases")]
    private partial void LogShutdownFailed(Exception exception);
}
