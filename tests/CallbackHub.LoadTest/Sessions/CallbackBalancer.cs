using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;

namespace CallbackHub.LoadTest.Sessions;

/// <summary>
/// The one callback address every instance gives the gateway (<c>Gateway__CallbackBaseUrl</c>), as a load balancer or
/// a Kubernetes Service would be: it forwards each push to the next instance in turn, and to another one if that one
/// refuses the connection (killed, or not started yet). A push whose instance dies while answering it gets 502, and
/// the gateway sends it again later, as it would behind a real balancer. Instances leave the rotation when the tool
/// stops them and join it once they answer.
/// </summary>
internal sealed class CallbackBalancer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _client;
    private readonly Lock _gate = new();
    private List<Uri> _upstreams = [];
    private int _next;
    private long _forwarded;
    private long _failovers;
    private long _badGateway;

    private CallbackBalancer(WebApplication app, HttpClient client, Uri baseUri)
    {
        _app = app;
        _client = client;
        BaseUri = baseUri;
    }

    public Uri BaseUri { get; }

    /// <summary>Pushes forwarded, connections refused and retried on another instance, and pushes answered 502.</summary>
    public (long Forwarded, long Failovers, long BadGateway) Counts =>
        (Interlocked.Read(ref _forwarded), Interlocked.Read(ref _failovers), Interlocked.Read(ref _badGateway));

    public static async Task<CallbackBalancer> StartAsync()
    {
        var baseUri = new Uri($"http://127.0.0.1:{HubProcess.FreePort()}");
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(baseUri.ToString());
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
#pragma warning disable CA2000 // disposed with the balancer
        var client = new HttpClient(new SocketsHttpHandler
        {
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
#pragma warning restore CA2000
        var balancer = new CallbackBalancer(app, client, baseUri);
        app.Run(balancer.ForwardAsync);
        await app.StartAsync();
        return balancer;
    }

    public void Add(Uri upstream)
    {
        lock (_gate)
        {
            _upstreams = [.. _upstreams, upstream];
        }
    }

    public void Remove(Uri upstream)
    {
        lock (_gate)
        {
            _upstreams = [.. _upstreams.Where(u => u != upstream)];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _client.Dispose();
    }

    private async Task ForwardAsync(HttpContext http)
    {
        using var body = new MemoryStream();
        await http.Request.Body.CopyToAsync(body, http.RequestAborted);
        var upstreams = _upstreams;
        var first = Interlocked.Increment(ref _next);
        for (var attempt = 0; attempt < upstreams.Count; attempt++)
        {
            var upstream = upstreams[(int)((uint)(first + attempt) % (uint)upstreams.Count)];
            using var request = new HttpRequestMessage(new HttpMethod(http.Request.Method), new Uri(upstream, http.Request.Path + http.Request.QueryString))
            {
                Content = new ByteArrayContent(body.ToArray()),
            };
            foreach (var (name, value) in http.Request.Headers)
            {
                if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                {
                    request.Content.Headers.TryAddWithoutValidation(name, value.ToArray());
                }
                else if (!name.Equals("Host", StringComparison.OrdinalIgnoreCase) && !name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)
                    && !name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && !name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
                {
                    request.Headers.TryAddWithoutValidation(name, value.ToArray());
                }
            }

            try
            {
                using var response = await _client.SendAsync(request, http.RequestAborted);
                var answer = await response.Content.ReadAsByteArrayAsync(http.RequestAborted);
                Interlocked.Increment(ref _forwarded);
                http.Response.StatusCode = (int)response.StatusCode;
                http.Response.ContentType = response.Content.Headers.ContentType?.ToString();
                await http.Response.Body.WriteAsync(answer, http.RequestAborted);
                return;
            }
            catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
            {
                // Nothing was sent: the instance is not there. Try the next one.
                Interlocked.Increment(ref _failovers);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !http.RequestAborted.IsCancellationRequested)
            {
                break;
            }
        }

        Interlocked.Increment(ref _badGateway);
        http.Response.StatusCode = (int)HttpStatusCode.BadGateway;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync("""{"message":"load-test balancer: no CallbackHub instance answered","retcode":"100-007"}""", http.RequestAborted);
    }
}
