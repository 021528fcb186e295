using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>Sends one push exactly as CC-Gateway does and judges the answer.</summary>
internal sealed class PushSender(IHttpClientFactory clients)
{
    public const string ClientName = "gateway-push";

    private static readonly MediaTypeHeaderValue JsonUtf8 = MediaTypeHeaderValue.Parse("application/json; charset=UTF-8");

    public async Task<PushResponse> SendAsync(string url, string guid, string serviceToken, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url);
        request.Content = new StringContent(body, Encoding.UTF8);
        request.Content.Headers.ContentType = JsonUtf8;
        request.Headers.TryAddWithoutValidation("Guid", guid);
        request.Headers.TryAddWithoutValidation("service_token", serviceToken);
        try
        {
            using var response = await clients.CreateClient(ClientName).SendAsync(request, cancellationToken);
            var answer = await response.Content.ReadAsStringAsync(cancellationToken);
            var acknowledged = response.IsSuccessStatusCode && HasSuccessRetcode(answer);
            return new PushResponse((int)response.StatusCode, answer, acknowledged, null);
        }
        catch (HttpRequestException ex)
        {
            // The outer message is generic ("An error occurred while sending the request"); the cause is inside.
            var cause = ex.InnerException is { } inner ? $"{ex.Message} ({inner.Message})" : ex.Message;
            return new PushResponse(null, null, false, cause);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // HttpClient.Timeout (Simulator:PushTimeout) surfaces as a cancellation we did not ask for.
            return new PushResponse(null, null, false, "timeout");
        }
    }

    /// <summary>The gateway wants <c>{"retcode":"0"}</c>; anything else is a failed push.</summary>
    private static bool HasSuccessRetcode(string answer)
    {
        try
        {
            using var document = JsonDocument.Parse(answer);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("retcode", out var retcode)
                && retcode.ValueKind == JsonValueKind.String
                && retcode.GetString() == "0";
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
