using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using CallbackHub.GatewaySimulator;
using CallbackHub.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>The gateway simulator on real HTTP, driven through its control API as a tester would.</summary>
internal sealed class SimulatorInstance : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private SimulatorInstance(WebApplication app, Uri baseUri)
    {
        App = app;
        BaseUri = baseUri;
        Http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public WebApplication App { get; }
    public Uri BaseUri { get; }
    public HttpClient Http { get; }

    public static async Task<SimulatorInstance> StartAsync(
        IReadOnlyDictionary<string, string?>? settings = null, Action<WebApplicationBuilder>? configure = null)
    {
        var baseUri = new Uri($"http://127.0.0.1:{ContainerSupport.FreeTcpPort()}");
        var app = SimulatorApp.Build([], builder =>
        {
            builder.WebHost.UseUrls(baseUri.ToString());
            builder.Configuration.AddInMemoryCollection(settings ?? new Dictionary<string, string?>());
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            configure?.Invoke(builder);
        });
        await app.StartAsync();
        return new SimulatorInstance(app, baseUri);
    }

    /// <summary>The simulator's view of an agent, including the service token it was given.</summary>
    public async Task<JsonObject> GetAgentAsync(int agentId) =>
        (await Http.GetFromJsonAsync<JsonObject>($"/simulator/agents/{agentId}"))!;

    public async Task<string> ServiceTokenAsync(int agentId) =>
        (await GetAgentAsync(agentId))["serviceToken"]!.GetValue<string>();

    /// <summary>Every gateway API request CallbackHub made for that agent.</summary>
    public async Task<JsonArray> RequestsAsync(int agentId) =>
        (await Http.GetFromJsonAsync<JsonArray>($"/simulator/requests?agentId={agentId}"))!;

    /// <summary>One push exactly as the gateway sends it; returns CallbackHub's HTTP status and body.</summary>
    public async Task<(int Status, JsonObject? Body)> PushOnceAsync(int agentId, IEnumerable<object> events, string? serviceToken = null)
    {
        using var response = await Http.PostAsJsonAsync($"/simulator/agents/{agentId}/push-once", new { events, serviceToken }, Json);
        response.EnsureSuccessStatusCode();
        var answer = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var body = answer["body"]?.GetValue<string>() is { Length: > 0 } text ? JsonNode.Parse(text) as JsonObject : null;
        return (answer["status"]!.GetValue<int>(), body);
    }

    /// <summary>Queues events for normal delivery (batched, retried every interval until acknowledged).</summary>
    public async Task EnqueueAsync(int agentId, IEnumerable<object> events)
    {
        using var response = await Http.PostAsJsonAsync($"/simulator/agents/{agentId}/events", events, Json);
        response.EnsureSuccessStatusCode();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
