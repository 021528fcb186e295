using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>A real HTTP(S) push receiver on 127.0.0.1, standing in for CallbackHub's webhook.</summary>
internal sealed class CallbackReceiver : IAsyncDisposable
{
    public const string Success = """{"message":"success","retcode":"0"}""";

    private readonly WebApplication app;

    private CallbackReceiver(WebApplication app)
    {
        this.app = app;
    }

    public ConcurrentQueue<ReceivedPush> Received { get; } = new();

    /// <summary>How to answer a push; the default acknowledges it.</summary>
    public Func<ReceivedPush, (int Status, string Body)> Answer { get; set; } = _ => (200, Success);

    public string Url => app.Urls.First() + "/callback";

    public static async Task<CallbackReceiver> StartAsync(X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        var app = builder.Build();
        var receiver = new CallbackReceiver(app);
        app.MapPost("/callback", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var push = new ReceivedPush(
                http.Request.Headers["Guid"].ToString(),
                http.Request.Headers["service_token"].ToString(),
                http.Request.ContentType,
                await reader.ReadToEndAsync());
            receiver.Received.Enqueue(push);
            var (status, body) = receiver.Answer(push);
            return Results.Text(body, "application/json", statusCode: status);
        });
        await app.StartAsync();
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}

internal sealed record ReceivedPush(string Guid, string ServiceToken, string? ContentType, string Body)
{
    public IReadOnlyList<string> EventTypes =>
        [.. System.Text.Json.JsonDocument.Parse(Body).RootElement.GetProperty("eventList").EnumerateArray()
            .Select(e => e.GetProperty("eventType").GetString()!)];
}
