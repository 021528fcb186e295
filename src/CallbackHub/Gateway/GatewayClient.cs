using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;
using CallbackHub.Hosting;

namespace CallbackHub.Gateway;

/// <summary>
/// Calls CC-Gateway's agent API (<c>/agentgateway/resource/onlineagent/...</c>). At most
/// <see cref="GatewayOptions.MaxConcurrentCalls"/> calls are in flight at once; the rest wait their turn.
/// </summary>
internal sealed class GatewayClient(HttpClient http, GatewayCallLimit limit, CallbackHubMetrics metrics, TimeProvider time, ILogger<GatewayClient> logger)
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public Task<GatewayAnswer> SignInAsync(int agentId, GatewaySignIn body, CancellationToken cancellationToken) =>
        SendAsync("sign-in", HttpMethod.Put, $"onlineagent/{agentId}", null, JsonBody(body), cancellationToken);

    public Task<GatewayAnswer> ForceLoginAsync(int agentId, GatewaySignIn body, CancellationToken cancellationToken) =>
        SendAsync("forcelogin", HttpMethod.Put, $"onlineagent/{agentId}/forcelogin", null, JsonBody(body), cancellationToken);

    /// <summary>Signs the agent in to skill queues (docs/gateway-protocol.md §1): its configured ones, or the listed ids.</summary>
    public Task<GatewayAnswer> ResetSkillsAsync(
        int agentId, GatewaySession session, bool auto, IReadOnlyList<int>? skillIds, bool phoneLinkage, CancellationToken cancellationToken)
    {
        var query = $"?phonelinkage={(phoneLinkage ? 1 : 0)}";
        if (!auto && skillIds is { Count: > 0 })
        {
            query = $"?skillid={string.Join(';', skillIds)}&phonelinkage={(phoneLinkage ? 1 : 0)}";
        }

        return SendAsync("resetskill", HttpMethod.Post, $"onlineagent/{agentId}/resetskill/{(auto ? "true" : "false")}{query}", session, null, cancellationToken);
    }

    public Task<GatewayAnswer> LogoutAsync(int agentId, GatewaySession session, CancellationToken cancellationToken) =>
        SendAsync("logout", HttpMethod.Delete, $"onlineagent/{agentId}/logout", session, null, cancellationToken);

    /// <summary>
    /// The push-mode heartbeat (docs/gateway-protocol.md §4); <paramref name="newServiceToken"/>, when given, replaces the
    /// token the gateway sends on later pushes.
    /// </summary>
    public Task<GatewayAnswer> HeartbeatAsync(int agentId, GatewaySession session, string? newServiceToken, CancellationToken cancellationToken) =>
        SendAsync("heartbeat", HttpMethod.Post, $"onlineagent/{agentId}/handshake", session, null, cancellationToken, newServiceToken);

    /// <summary>
    /// A body with its length known: sent with <c>Content-Length</c>, as some gateway fronts mishandle chunked request
    /// bodies (JsonContent would stream it chunked).
    /// </summary>
    private static ByteArrayContent JsonBody<T>(T body)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, Json));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        return content;
    }

    private async Task<GatewayAnswer> SendAsync(
        string operation, HttpMethod method, string path, GatewaySession? session, HttpContent? content,
        CancellationToken cancellationToken, string? serviceToken = null)
    {
        using var turn = await limit.EnterAsync(cancellationToken);
        var started = time.GetTimestamp();
        var outcome = "unreachable";
        try
        {
            var answer = await SendCoreAsync(method, path, session, content, serviceToken, cancellationToken);
            outcome = answer.Retcode;
            return answer;
        }
        finally
        {
            metrics.GatewayCall(operation, outcome, time.GetElapsedTime(started));
        }
    }

    private async Task<GatewayAnswer> SendCoreAsync(
        HttpMethod method, string path, GatewaySession? session, HttpContent? content, string? serviceToken, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, "agentgateway/resource/" + path) { Content = content };
        if (session is not null)
        {
            request.Headers.TryAddWithoutValidation("Guid", session.Guid);
            if (session.Cookies is { Length: > 0 } cookies)
            {
                // Resent as the load balancer in front of the gateway set them, for stickiness.
                request.Headers.TryAddWithoutValidation("Cookie", cookies);
            }
        }

        if (serviceToken is not null)
        {
            request.Headers.TryAddWithoutValidation("service_token", serviceToken);
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        // ExecutionRejectedException: the resilience pipeline timed the call out or its circuit is open.
        catch (Exception e) when (e is HttpRequestException or Polly.ExecutionRejectedException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning("Gateway call {Method} {Path} failed: {Error}", method, path, e.Message);
            throw new GatewayUnavailableException($"The gateway could not be reached: {e.Message}", e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            try
            {
                return GatewayAnswer.Parse(body, ReadGuid(response), ReadCookies(response));
            }
            catch (JsonException)
            {
                logger.LogWarning("Gateway call {Method} {Path} answered HTTP {Status} without its JSON", method, path, (int)response.StatusCode);
                throw new GatewayUnavailableException($"The gateway answered HTTP {(int)response.StatusCode} without a JSON body.");
            }
        }
    }

    /// <summary>The <c>name=value</c> parts of every <c>Set-Cookie</c>, joined as a <c>Cookie</c> header; null when none.</summary>
    internal static string? ReadCookies(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values)
            ? string.Join("; ", values.Select(v => v.Split(';', 2)[0].Trim()).Where(v => v.Contains('=', StringComparison.Ordinal)))
            : null;

    /// <summary>
    /// The session Guid: <c>Set-GUID: JSESSIONID=…</c> (the part after '=') wins over a plain <c>Guid</c> header,
    /// because in dynamic mode it is the newest value.
    /// </summary>
    internal static string? ReadGuid(HttpResponseMessage response)
    {
        if (response.Headers.TryGetValues("Set-GUID", out var setGuid))
        {
            var value = setGuid.First();
            var equals = value.IndexOf('=', StringComparison.Ordinal);
            return equals >= 0 ? value[(equals + 1)..].Trim() : value.Trim();
        }

        return response.Headers.TryGetValues("Guid", out var guid) ? guid.First().Trim() : null;
    }
}
