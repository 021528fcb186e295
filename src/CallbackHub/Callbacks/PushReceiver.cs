using System.Buffers;
using System.Text;
using System.Text.Json;
using CallbackHub.Hosting;
using CallbackHub.Outbox;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Npgsql;

namespace CallbackHub.Callbacks;

/// <summary>
/// Takes one push from the gateway: checks it, authenticates it, stores it, and answers the way the gateway
/// understands — <c>{"message":"success","retcode":"0"}</c> only once the events are committed.
/// </summary>
internal sealed partial class PushReceiver(
    IServiceScopeFactory scopes,
    Agents.SessionTokens tokens,
    EventStore store,
    TimeProvider time,
    CallbackHubMetrics metrics,
    IOptions<CallbackOptions> options,
    ILogger<PushReceiver> logger)
{
    public const string TokenHeader = "service_token";
    public const string ShutdownServiceEvent = "AgentOther_ShutdownService";

    private static readonly byte[] SuccessBody = Encoding.UTF8.GetBytes("""{"message":"success","retcode":"0"}""");

    public async Task HandleAsync(HttpContext http)
    {
        var rejection = await ReceiveAsync(http.Request, http.RequestAborted);
        http.Response.ContentType = "application/json; charset=utf-8";
        if (rejection is null)
        {
            await http.Response.Body.WriteAsync(SuccessBody, http.RequestAborted);
            return;
        }

        metrics.PushRejected(rejection.Reason);
        LogRejected(rejection.StatusCode, rejection.Reason, rejection.Message);
        http.Response.StatusCode = rejection.StatusCode;
        await JsonSerializer.SerializeAsync(http.Response.Body, new GatewayReply(rejection.Message, rejection.Retcode), cancellationToken: http.RequestAborted);
    }

    private async Task<PushRejection?> ReceiveAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var token = request.Headers[TokenHeader].ToString();
        if (token.Length == 0)
        {
            return PushRejection.Unauthorized($"The {TokenHeader} header is missing.");
        }

        var limit = options.Value.MaxBodyBytes;
        if (request.ContentLength > limit)
        {
            return TooLarge(limit);
        }

        if (!IsJson(request.ContentType))
        {
            return new PushRejection(StatusCodes.Status415UnsupportedMediaType, PushRejection.InvalidParameter,
                $"Content-Type must be application/json (UTF-8); got '{request.ContentType}'.", "content-type");
        }

        var body = await ReadBodyAsync(request, limit, cancellationToken);
        if (body is null)
        {
            return TooLarge(limit);
        }

        if (!PushParser.TryParse(body, out var batch, out var invalid))
        {
            return invalid;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.StoreTimeout);
        try
        {
            if (!await tokens.IsAuthorizedAsync(batch.AgentId, token, options.Value.SessionCacheTtl, timeout.Token))
            {
                return PushRejection.Unauthorized($"The {TokenHeader} is not the current token of signed-in agent {batch.AgentId}.");
            }

            metrics.EventsReceived(batch.Events.Count);
            var outcome = await store.AppendAsync(batch, time.GetUtcNow(), options.Value.DuplicateWindow, timeout.Token);
            if (outcome == AppendOutcome.Duplicate)
            {
                metrics.DuplicatesDropped(batch.Events.Count);
                LogDuplicate(batch.AgentId, batch.Events.Count);
                return null;
            }

            metrics.EventsStored(batch.Events.Count);

            if (batch.Events.LastOrDefault(e => e.EventType == ShutdownServiceEvent) is { } shutdown)
            {
                await OnSignedOutByGatewayAsync(batch.AgentId, shutdown.ContentJson);
            }

            return null;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // Not stored: say so with a non-"0" retcode and the gateway re-sends the batch (every 10 s, 120 s long).
            LogStoreFailed(e, batch.AgentId);
            return new PushRejection(StatusCodes.Status503ServiceUnavailable, PushRejection.InternalError,
                "The event store is unavailable; the events were not stored. Retry later.", "store-unavailable");
        }
    }

    /// <summary>
    /// The gateway says it signed the agent out (docs/gateway-protocol.md §5): the session is lost, and the keeper signs
    /// it in again when it can. The events are already stored, so a failure here must not fail the push.
    /// </summary>
    private async Task OnSignedOutByGatewayAsync(int agentId, string contentJson)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<Agents.SessionKeeping>().SignedOutByGatewayAsync(
                agentId, Agents.LoginTimes.Read(contentJson), CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            LogMarkLostFailed(e, agentId);
        }
    }

    private static PushRejection TooLarge(long limit) => new(StatusCodes.Status413PayloadTooLarge, PushRejection.InvalidParameter,
        $"The body is larger than the {limit} bytes accepted (Callbacks:MaxBodyBytes).", "too-large");

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        && (!media.Charset.HasValue || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    /// <summary>Reads the whole body, or returns null as soon as it exceeds <paramref name="limit"/>.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        var reader = request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (buffer.Length > limit)
            {
                reader.AdvanceTo(buffer.End);
                return null;
            }

            if (result.IsCompleted)
            {
                var bytes = buffer.ToArray();
                reader.AdvanceTo(buffer.End);
                return bytes;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private sealed record GatewayReply(
        [property: System.Text.Json.Serialization.JsonPropertyName("message")] string Message,
        [property: System.Text.Json.Serialization.JsonPropertyName("retcode")] string Retcode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Push refused with HTTP {Status} ({Reason}): {Detail}")]
    private partial void LogRejected(int status, string reason, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-sent batch of {Count} events for agent {AgentId} recognised and dropped")]
    private partial void LogDuplicate(int agentId, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {AgentId} was signed out by the gateway, but its session could not be marked lost")]
    private partial void LogMarkLostFailed(Exception exception, int agentId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Push for agent {AgentId} could not be stored; answered 503 so the gateway retries")]
    private partial void LogStoreFailed(Exception exception, int agentId);
}
