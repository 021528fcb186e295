using Npgsql;

namespace CallbackHub.Storage;

internal sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary>From <c>ConnectionStrings__Postgres</c>.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Apply EF Core migrations at start. Teams that migrate as a separate step turn this off.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>How long start-up waits for PostgreSQL to answer before giving up.</summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A CallbackHub transaction (any instance's) that has waited this long on its client is ended by the database, so that
    /// the row locks of a frozen or cut-off instance do not hold other instances' pushes (see <see cref="StalledTransactionReaper"/>).
    /// Zero turns it off.
    /// </summary>
    public TimeSpan StalledTransactionTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>What the connections tell PostgreSQL they are, unless the connection string says otherwise: the reaper knows
    /// CallbackHub's sessions by it.</summary>
    public const string DefaultApplicationName = "CallbackHub";

    /// <summary>Connections one instance opens at most, unless the connection string says otherwise.</summary>
    public const int DefaultMaxPoolSize = 40;

    /// <summary>
    /// Npgsql's own default pool (100) is PostgreSQL's default <c>max_connections</c>: one busy instance (a thousand
    /// agents pushing at once, a keeper round of heartbeats) would take every connection and lock out everyone else.
    /// Waiting for one of 40 connections costs a push milliseconds; a refused connection costs it a 503.
    /// </summary>
    public static string WithPoolBound(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Names(connectionString, "MaximumPoolSize", "MaxPoolSize"))
        {
            builder.MaxPoolSize = DefaultMaxPoolSize;
        }

        if (!Names(connectionString, "ApplicationName"))
        {
            builder.ApplicationName = DefaultApplicationName;
        }

        // Npgsql resets a pooled connection when it is returned (DISCARD ALL before its next use): one more statement, and
        // one more transaction in PostgreSQL's books, for every push group, token read and round. The service keeps no
        // session state on pooled connections (settings are SET LOCAL, LISTEN has a connection of its own), so it skips it.
        if (!Names(connectionString, "NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }

        return builder.ConnectionString;
    }

    /// <summary>Whether the connection string sets one of these keys itself (spaces and case aside).</summary>
    private static bool Names(string connectionString, params string[] keys) =>
        connectionString.Split(';').Any(part =>
            part.Split('=')[0].Replace(" ", "", StringComparison.Ordinal).Trim() is { } key
            && keys.Any(k => key.Equals(k, StringComparison.OrdinalIgnoreCase)));

    public static IEnumerable<string> Validate(DatabaseOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.ConnectionString))
        {
            yield return "ConnectionStrings__Postgres is required (an Npgsql connection string, e.g. Host=db;Username=callbackhub;Password=…;Database=callbackhub).";
            yield break;
        }

        string? error = null;
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(o.ConnectionString);
            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                error = "ConnectionStrings__Postgres names no Host.";
            }
        }
        catch (ArgumentException e)
        {
            error = $"ConnectionStrings__Postgres is not a valid Npgsql connection string: {e.Message}";
        }

        if (error is not null)
        {
            yield return error;
        }

        if (o.StartupTimeout <= TimeSpan.Zero)
        {
            yield return "Database__StartupTimeout must be positive.";
        }

        if (o.StalledTransactionTimeout < TimeSpan.Zero || (o.StalledTransactionTimeout > TimeSpan.Zero && o.StalledTransactionTimeout < TimeSpan.FromSeconds(1)))
        {
            yield return "Database__StalledTransactionTimeout must be zero (off) or at least 1 second (a healthy sign-in under load was seen waiting 0.4 s on its own client).";
        }
    }
}
