using CallbackHub.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace CallbackHub.Storage;

/// <summary>
/// Ends the transactions of CallbackHub sessions (any instance's) that have waited on their client for longer than
/// <see cref="DatabaseOptions.StalledTransactionTimeout"/>. A healthy instance keeps a transaction waiting on itself for
/// milliseconds; one that waits for seconds belongs to an instance that is frozen (SIGSTOP, a paused VM), cut off, or
/// stuck — and it keeps its row locks: a group commit stopped half way holds its agents' stream rows, and every other
/// instance's push for those agents waits behind it. PostgreSQL ends such a transaction on its own only when TCP gives up
/// (minutes to hours for a vanished host; never for a frozen process, whose kernel still answers), and
/// <c>idle_in_transaction_session_timeout</c> does not cover a batch whose statements have not all arrived. So every
/// instance looks, on the database's clock, and terminates what it finds. The transaction rolls back: nothing in it was
/// answered (a push is answered after its commit), so the gateway sends it again.
/// </summary>
internal sealed partial class StalledTransactionReaper(
    NpgsqlDataSource dataSource, IOptions<DatabaseOptions> options, CallbackHubMetrics metrics, ILogger<StalledTransactionReaper> logger)
    : BackgroundService
{
    // Sessions of the same application (the connection string's Application Name, the same on every instance) in a
    // transaction, waiting on their client ('idle in transaction', or 'active' between the statements of a batch or while
    // PostgreSQL cannot hand over results), with nothing new from the client for longer than the limit.
    private const string ReapSql = """
        SELECT pid, coalesce(host(client_addr), 'local'), state, wait_event,
               extract(epoch FROM now() - greatest(state_change, query_start))::float8, pg_terminate_backend(pid)
        FROM pg_stat_activity
        WHERE datname = current_database()
          AND application_name = current_setting('application_name')
          AND pid <> pg_backend_pid()
          AND backend_type = 'client backend'
          AND xact_start IS NOT NULL
          AND wait_event_type = 'Client'
          AND greatest(state_change, query_start) < now() - $1
        """;

    private bool _refusedLogged;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var limit = options.Value.StalledTransactionTimeout;
        if (limit <= TimeSpan.Zero)
        {
            return;
        }

        // Checked a few times per limit: a stalled transaction is ended within about 1.5 × the limit.
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Clamp(limit.Ticks / 2, TimeSpan.FromMilliseconds(200).Ticks, TimeSpan.FromSeconds(5).Ticks)));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await ReapAsync(limit, stoppingToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                if (!_refusedLogged)
                {
                    _refusedLogged = true;
                    LogNotAllowed(e.MessageText);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // The database is away: nothing to end there now; the next tick looks again.
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Never the reason the service stops: log it and look again at the next tick.
                LogCheckFailed(e);
            }
        }
    }

    /// <summary>Terminates the stalled transactions now.</summary>
    private async Task ReapAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ReapSql);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = limit, NpgsqlDbType = NpgsqlDbType.Interval });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            if (reader.GetBoolean(5))
            {
                metrics.StalledTransactionEnded();
                LogEnded(reader.GetInt32(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetDouble(4));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ended a stalled CallbackHub transaction: PostgreSQL session {Pid} from {Client} was {State} waiting on {WaitEvent} for {Seconds:0.0} s (an instance frozen, cut off or stuck); it rolls back and its locks are freed")]
    private partial void LogEnded(int pid, string client, string state, string waitEvent, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stalled CallbackHub transactions cannot be ended: {Reason}. Run every instance under one database role, or grant the role pg_signal_backend and pg_read_all_stats")]
    private partial void LogNotAllowed(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The check for stalled CallbackHub transactions failed")]
    private partial void LogCheckFailed(Exception e);
}
