using System.Text.Json;
using CallbackHub.Hosting;
using CallbackHub.Outbox;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace CallbackHub.Observability;

/// <summary>
/// Health endpoints, Prometheus metrics and the OpenAPI document. Logs need nothing here: the console logger's
/// JSON formatter is one setting away (<c>Logging__Console__FormatterName=json</c>).
/// </summary>
internal static class ObservabilityRegistration
{
    /// <summary>Checks that say whether the whole pipeline works: database, broker, outbox.</summary>
    private const string ReadyTag = "ready";

    /// <summary>Checks that say whether pushes can be taken: only the database (the outbox covers the broker).</summary>
    private const string AcceptingTag = "accepting";

    public static IServiceCollection AddObservability(this IServiceCollection services)
    {
        services.AddSingleton<RabbitMqHealthCheck>();
        services.AddHealthChecks()
            .AddCheck<PostgresHealthCheck>("postgres", tags: [ReadyTag, AcceptingTag], timeout: TimeSpan.FromSeconds(5))
            .AddCheck<RabbitMqHealthCheck>("rabbitmq", tags: [ReadyTag], timeout: TimeSpan.FromSeconds(5))
            .AddCheck<OutboxHealthCheck>("outbox", tags: [ReadyTag]);

        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("callbackhub"))
            .WithMetrics(metrics => metrics
                .AddMeter(CallbackHubMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddPrometheusExporter());

        services.AddOpenApi();
        return services;
    }

    public static WebApplication MapObservability(this WebApplication app)
    {
        // Live: the process answers HTTP. No dependency is checked, so an outage never gets replicas restarted.
        app.MapHealth("/health/live", _ => false);
        app.MapHealth("/health/ready", check => check.Tags.Contains(ReadyTag));
        app.MapHealth("/health/accepting", check => check.Tags.Contains(AcceptingTag));
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi();
        return app;
    }

    /// <summary>
    /// A health endpoint. Not MapHealthChecks: that resolves the health check service (and what its checks need) while the
    /// app is being built, so a wrong setting would throw from Build instead of failing the start with its sentence.
    /// The report is kept for <see cref="HealthCacheFor"/>: probes and strangers alike then cost PostgreSQL at most one query
    /// a second per endpoint, however often they ask.
    /// </summary>
    private static void MapHealth(this WebApplication app, string pattern, Func<HealthCheckRegistration, bool> predicate)
    {
        var cache = new CachedHealthReport(predicate);
        app.MapGet(pattern, async (HealthCheckService health, TimeProvider time, HttpContext context) =>
            {
                var report = await cache.GetAsync(health, time, context.RequestAborted);
                // Degraded is not ready either: a probe must not route traffic to a half-working replica.
                context.Response.StatusCode = report.Status == HealthStatus.Healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.CacheControl = "no-store";
                await WriteAsync(context, report);
            })
            .ExcludeFromDescription();
    }

    /// <summary>How long a health report is answered from memory.</summary>
    public static readonly TimeSpan HealthCacheFor = TimeSpan.FromSeconds(1);

    private sealed class CachedHealthReport(Func<HealthCheckRegistration, bool> predicate)
    {
        private readonly Lock _lock = new();
        private Snapshot? _last;
        private Task<HealthReport>? _running;

        public Task<HealthReport> GetAsync(HealthCheckService health, TimeProvider time, CancellationToken cancellationToken)
        {
            Task<HealthReport> running;
            lock (_lock)
            {
                if (_last is { } last && time.GetElapsedTime(last.At) < HealthCacheFor)
                {
                    return Task.FromResult(last.Report);
                }

                // One check at a time: the requests that come while it runs get its answer.
                if (_running is not { IsCompleted: false })
                {
                    _running = CheckAsync(health, time);
                }

                running = _running;
            }

            return running.WaitAsync(cancellationToken);
        }

        private async Task<HealthReport> CheckAsync(HealthCheckService health, TimeProvider time)
        {
            var report = await health.CheckHealthAsync(predicate, CancellationToken.None);
            _last = new Snapshot(report, time.GetTimestamp());
            return report;
        }

        private sealed record Snapshot(HealthReport Report, long At);
    }

    /// <summary><c>{"status":"Unhealthy","checks":{"postgres":{"status":"Healthy","description":"…"}}}</c></summary>
    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(
                e => e.Key,
                e => new { status = e.Value.Status.ToString(), description = e.Value.Description ?? e.Value.Exception?.Message }),
        };
        return JsonSerializer.SerializeAsync(context.Response.Body, body, cancellationToken: context.RequestAborted);
    }
}
