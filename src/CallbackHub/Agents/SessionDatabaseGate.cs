using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

/// <summary>
/// Bounds the session work's share of the database connection pool (<see cref="SessionKeepingOptions.MaxConcurrentDatabaseCalls"/>),
/// so that pushes always find a connection for their commit however many heartbeats are answered at once.
/// </summary>
internal sealed class SessionDatabaseGate(IOptions<SessionKeepingOptions> options)
    : Hosting.ConcurrencyLimit(options.Value.MaxConcurrentDatabaseCalls);
