using CallbackHub.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CallbackHub.Agents;

/// <summary>
/// Keeps every agent in push mode: signs the roster in at start, and on every tick renews this instance's
/// leases in PostgreSQL and does what is due for the sessions it owns (heartbeat, token rotation, recovery).
/// Each session is kept by exactly one instance at a time; when that instance dies its leases lapse and
/// another instance takes the agents over — without signing them out, the Guid and tokens being shared.
/// </summary>
internal sealed partial class SessionKeeper(
    IServiceScopeFactory scopes,
    NpgsqlDataSource dataSource,
    IOptions<SessionKeepingOptions> options,
    IOptions<RosterOptions> roster,
    TimeProvider time,
    ILogger<SessionKeeper> logger) : BackgroundService, IHostedLifecycleService
{
    private const string ClaimSql = """
        UPDATE agent_sessions SET owner_instance = $1, lease_expires_at = $2
        WHERE (state IN ('active', 'lost', 'signing-in', 'signing-out') OR state = 'failed' AND next_sign_in_at IS NOT NULL)
          AND (owner_instance = $1 OR owner_instance IS NULL OR lease_expires_at IS NULL OR lease_expires_at < $3)
        RETURNING agent_id, state, coalesce(last_heartbeat_at, signed_in_at), next_sign_in_at, updated_at
        """;

    private const string OwnedSql = "SELECT agent_id FROM agent_sessions WHERE owner_instance = $1 AND state = 'active'";
    private const string ReleaseSql = "UPDATE agent_sessions SET owner_instance = NULL, lease_expires_at = NULL WHERE owner_instance = $1";

    private bool _rosterSignedIn;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.KeeperEnabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await TickAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogTickFailed(e);
            }

            await Task.Delay(options.Value.KeeperInterval, time, stoppingToken).ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>One round of keeping; the background loop calls it every <see cref="SessionKeepingOptions.KeeperInterval"/>.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        if (!_rosterSignedIn)
        {
            await SignInRosterAsync(cancellationToken);
            _rosterSignedIn = true;
        }

        var due = await ClaimLeasesAsync(cancellationToken);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(due, parallel, async (agentId, token) =>
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<AgentSessions>().KeepAsync(agentId, token);
        });
    }

    /// <summary>Roster agents with no live session (never signed in, signed out, or a failed sign-in) are signed in; live ones are resumed as they are.</summary>
    private async Task SignInRosterAsync(CancellationToken cancellationToken)
    {
        foreach (var agent in roster.Value.Agents)
        {
            await using var scope = scopes.CreateAsyncScope();
            var sessions = scope.ServiceProvider.GetRequiredService<AgentSessions>();
            var current = await sessions.GetAsync(agent.AgentId, cancellationToken);
            if (current is null || current.State == AgentSessionStates.ToText(AgentSessionState.SignedOut)
                                || current.State == AgentSessionStates.ToText(AgentSessionState.Failed))
            {
                await sessions.SignInAsync(agent.AgentId, agent, automatic: true, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Renews (or takes) this instance's leases in one statement and returns the agents with something due:
    /// a heartbeat, or a sign-in of a lost session. The rest cost nothing more this round.
    /// </summary>
    private async Task<List<int>> ClaimLeasesAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var command = dataSource.CreateCommand(ClaimSql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = options.Value.InstanceId });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now + options.Value.LeaseDuration });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = now });
        var due = new List<int>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            if (options.Value.IsDue(
                    AgentSessionStates.Parse(reader.GetString(1)), NullableTime(reader, 2), NullableTime(reader, 3), reader.GetFieldValue<DateTimeOffset>(4), now))
            {
                due.Add(reader.GetInt32(0));
            }
        }

        return due;
    }

    /// <summary>
    /// On SIGTERM, before the web server stops: sign this instance's agents out, or (when another instance is to
    /// keep them) hand their leases back so that it takes over at once.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.KeeperEnabled)
        {
            return;
        }

        try
        {
            if (options.Value.SignOutOnShutdown)
            {
                await using var owned = dataSource.CreateCommand(OwnedSql);
                owned.Parameters.Add(new NpgsqlParameter<string> { TypedValue = options.Value.InstanceId });
                foreach (var agentId in await ReadIdsAsync(owned, cancellationToken))
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var outcome = await scope.ServiceProvider.GetRequiredService<AgentSessions>().SignOutAsync(agentId, cancellationToken);
                    LogShutdownSignOut(agentId, outcome.Problem?.Detail ?? "signed out");
                }
            }

            await using var release = dataSource.CreateCommand(ReleaseSql);
            release.Parameters.Add(new NpgsqlParameter<string> { TypedValue = options.Value.InstanceId });
            await release.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            LogShutdownFailed(e);
        }
    }

    private static DateTimeOffset? NullableTime(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<DateTimeOffset>(ordinal);

    private static async Task<List<int>> ReadIdsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        var ids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetInt32(0));
        }

        return ids;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session keeping round failed; next round in a moment")]
    private partial void LogTickFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Shutting down: agent {AgentId}: {Outcome}")]
    private partial void LogShutdownSignOut(int agentId, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down: could not sign agents out or release their leases")]
    private partial void LogShutdownFailed(Exception exception);
}
