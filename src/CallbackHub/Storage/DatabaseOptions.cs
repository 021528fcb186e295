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
    }
}
