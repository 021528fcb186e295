using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace CallbackHub.Storage;

/// <summary>
/// Lets <c>dotnet ef</c> build the model without starting the service (which would insist on its whole
/// configuration). Making a migration needs no database; <c>dotnet ef database update</c> reads
/// <c>ConnectionStrings__Postgres</c>.
/// </summary>
internal sealed class DesignTimeDbContextFactory : IDesignTimeDbContextFactory<CallbackHubDbContext>
{
    public CallbackHubDbContext CreateDbContext(string[] args)
    {
        var connectionString = Environment.GetEnvironmentVariable("ConnectionStrings__Postgres") ?? "Host=localhost;Database=callbackhub";
        return new CallbackHubDbContext(new DbContextOptionsBuilder<CallbackHubDbContext>().UseNpgsql(connectionString).Options);
    }
}
