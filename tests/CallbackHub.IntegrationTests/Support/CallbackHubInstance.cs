using System.Net.Http.Json;
using CallbackHub.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>A real CallbackHub on Kestrel (real HTTP on 127.0.0.1), configured the way a user would.</summary>
internal sealed class CallbackHubInstance : IAsyncDisposable
{
    public const string ApiKey = "integration-test-api-key-0123456789";

    private CallbackHubInstance(WebApplication app, Uri baseUri)
    {
        App = app;
        BaseUri = baseUri;
        Api = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
        Api.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        Callbacks = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public WebApplication App { get; }
    public Uri BaseUri { get; }

    /// <summary>A management API client that carries the API key.</summary>
    public HttpClient Api { get; }

    /// <summary>A bare client, for pushing to the callback endpoint the way the gateway does.</summary>
    public HttpClient Callbacks { get; }

    public Uri CallbackUri => new(BaseUri, "/callbacks/agent-events");

    public static async Task<CallbackHubInstance> StartAsync(
        string postgres, string rabbitMq, Uri gateway, IReadOnlyDictionary<string, string?>? settings = null,
        Action<WebApplicationBuilder>? configure = null, Uri? baseUri = null)
    {
        baseUri ??= new Uri($"http://127.0.0.1:{ContainerSupport.FreeTcpPort()}");
        var configuration = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = postgres,
            ["ConnectionStrings:RabbitMq"] = rabbitMq,
            ["Gateway:BaseUrl"] = gateway.ToString(),
            ["Gateway:CallbackBaseUrl"] = baseUri.ToString(),
            ["Management:ApiKey"] = ApiKey,
            ["Outbox:PublishTimeout"] = "00:00:03",
            ["Outbox:MaxRetryDelay"] = "00:00:01",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        var app = CallbackHubApp.Build([], builder =>
        {
            builder.WebHost.UseUrls(baseUri.ToString());
            builder.Configuration.AddInMemoryCollection(configuration);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            configure?.Invoke(builder);
        });
        await app.StartAsync();
        return new CallbackHubInstance(app, baseUri);
    }

    public async Task<HttpResponseMessage> SignInAsync(int agentId, object? body = null) =>
        await Api.PutAsJsonAsync($"/api/agents/{agentId}/session", body ?? new { password = "secret", phoneNumber = "88001" });

    private bool _disposed;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Api.Dispose();
        Callbacks.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
