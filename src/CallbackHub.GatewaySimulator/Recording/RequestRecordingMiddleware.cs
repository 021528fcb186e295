using System.Text;
using System.Text.RegularExpressions;

namespace CallbackHub.GatewaySimulator.Recording;

/// <summary>Records every request to the gateway API before it is handled; the handler adds its retcode.</summary>
internal sealed partial class RequestRecordingMiddleware(RequestDelegate next, BoundedLog<RecordedRequest> log, TimeProvider time)
{
    private long lastId;

    public async Task InvokeAsync(HttpContext http)
    {
        if (!http.Request.Path.StartsWithSegments("/agentgateway", StringComparison.OrdinalIgnoreCase))
        {
            await next(http);
            return;
        }

        // Buffered so the endpoint can read the body again after it has been recorded.
        http.Request.EnableBuffering();
        string body;
        using (var reader = new StreamReader(http.Request.Body, Encoding.UTF8, leaveOpen: true))
        {
            body = await reader.ReadToEndAsync(http.RequestAborted);
        }

        http.Request.Body.Position = 0;
        var path = http.Request.Path.Value + http.Request.QueryString.Value;
        var record = new RecordedRequest
        {
            Id = Interlocked.Increment(ref lastId),
            Time = time.GetUtcNow(),
            Method = http.Request.Method,
            Path = path,
            AgentId = AgentIdInPath().Match(path) is { Success: true } match ? match.Groups[1].Value : null,
            Headers = http.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            Body = body,
        };
        http.Features.Set(record);
        log.Add(record);
        await next(http);
    }

    [GeneratedRegex("^/agentgateway/resource/(?:onlineagent|agentevent)/([^/?]+)", RegexOptions.IgnoreCase)]
    private static partial Regex AgentIdInPath();
}
