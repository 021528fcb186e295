using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using CallbackHub.Hosting;

namespace CallbackHub.Gateway;

/// <summary>Calls CC-Gateway's agent API (<c>/agentgateway/resource/onlineagent/...</c>).</summary>
internal sealed class GatewayClient(HttpClient http, CallbackHubMetrics metrics, TimeProvider time, ILogger<GatewayClient> logger)
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public Task<GatewayAnswer> SignInAsync(int agentId, GatewaySignIn body, CancellationToken cancellationToken) =>
        SendAsync("sign-in", HttpMethod.Put, $"onlineagent/{agentId}", null, JsonContent.Create(body, options: Json), cancellationToken);

    public Task<GatewayAnswer> LogoutAsync(int agentId, string guid, CancellationToken cancellationToken) =>
        SendAsync("logout", HttpMethod.Delete, $"onlineagent/{agentId}/logout", guid, null, cancellationToken);

    private async Task<GatewayAnswer> SendAsync(
        string operation, HttpMethod method, string path, string? guid, HttpContent? content, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var outcome = "unreachable";
        try
        {
            var answer = await SendCoreAsync(method, path, guid, content, cancellationToken);
            outcome = answer.Retcode;
            return answer;
        }
        finally
        {
            metrics.GatewayCall(operation, outcome, time.GetElapsedTime(started));
        }
    }

    private async Task<GatewayAnswer> SendCoreAsync(
        HttpMethod method, string path, string? guid, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, "agentgateway/resource/" + path) { Content = content };
        if (guid is not null)
        {
            request.Headers.TryAddWithoutValidation("Guid", guid);
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
                return GatewayAnswer.Parse(body, ReadGuid(response));
            }
            catch (JsonException)
            {
                logger.LogWarning("Gateway call {Method} {Path} answered HTTP {Status} without its JSON", method, path, (int)response.StatusCode);
                throw new GatewayUnavailableException($"The gateway answered HTTP {(int)response.StatusCode} without a JSON body.");
            }
        }
    }

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
