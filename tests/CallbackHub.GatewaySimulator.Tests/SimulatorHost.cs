using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>The simulator on 127.0.0.1 with a fake clock, plus a client for its gateway and control APIs.</summary>
internal sealed class SimulatorHost : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 7, 20, 8, 0, 0, TimeSpan.Zero);

    private SimulatorHost(WebApplication app, FakeTimeProvider time)
    {
        App = app;
        Time = time;
        Client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        State = app.Services.GetRequiredService<GatewaySimulatorState>();
    }

    public WebApplication App { get; }

    public FakeTimeProvider Time { get; }

    public HttpClient Client { get; }

    public GatewaySimulatorState State { get; }

    public static async Task<SimulatorHost> StartAsync(Dictionary<string, string?>? settings = null)
    {
        var time = new FakeTimeProvider(Start);
        var app = SimulatorApp.Build(["--urls", "http://127.0.0.1:0"], builder =>
        {
            builder.Configuration.AddInMemoryCollection(settings ?? []);
            builder.Services.AddSingleton<TimeProvider>(time);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        });
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new SimulatorHost(app, time);
    }

    /// <summary>Signs in with a valid body; extra fields are merged over the defaults.</summary>
    public async Task<HttpResponseMessage> SignInAsync(string agentId, object? fields = null, bool force = false)
    {
        var body = new Dictionary<string, object?> { ["password"] = "secret1", ["phonenum"] = "70001" };
        if (fields is not null)
        {
            foreach (var property in JsonSerializer.SerializeToElement(fields).EnumerateObject())
            {
                body[property.Name] = property.Value;
            }
        }

        var path = $"/agentgateway/resource/onlineagent/{agentId}{(force ? "/forcelogin" : "")}";
        return await Client.PutAsJsonAsync(path, body);
    }

    /// <summary>Signs in in push mode to <paramref name="callBackUri"/> and returns the Guid.</summary>
    public async Task<string> SignInPushAsync(string agentId, string callBackUri, string serviceToken = "token1", object? fields = null)
    {
        var merged = JsonSerializer.SerializeToElement(fields ?? new { }).EnumerateObject()
            .ToDictionary(p => p.Name, p => (object?)p.Value);
        merged["callBackUri"] = callBackUri;
        merged["serviceToken"] = serviceToken;
        using var response = await SignInAsync(agentId, merged);
        var answer = await Gateway.ReadAsync(response);
        Assert.Equal("0", answer.Retcode);
        return response.Headers.GetValues("Guid").Single();
    }

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string agentPath, string? guid, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, $"/agentgateway/resource/onlineagent/{agentPath}");
        if (guid is not null)
        {
            request.Headers.Add("Guid", guid);
        }

        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await Client.SendAsync(request);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Reads gateway answers.</summary>
internal static class Gateway
{
    public static async Task<GatewayAnswer> ReadAsync(HttpResponseMessage response)
    {
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = document.RootElement;
        return new GatewayAnswer(
            root.GetProperty("retcode").GetString()!,
            root.GetProperty("message").GetString()!,
            root.TryGetProperty("result", out var result) ? result.Clone() : null);
    }
}

internal sealed record GatewayAnswer(string Retcode, string Message, JsonElement? Result);
