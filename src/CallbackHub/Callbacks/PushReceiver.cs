using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CallbackHub.Hosting;
using CallbackHub.Outbox;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Npgsql;

namespace CallbackHub.Callbacks;

/// <summary>
/// Takes one push from the gateway: authenticates it by its token alone (before reading the body), checks it, stores it,
/// and answers the way the gateway understands — <c>{"message":"success","retcode":"0"}</c> only once the events are
/// committed. Every other answer has the same shape with a non-"0" retcode and a sentence saying what is wrong: 4xx for
/// what can never be stored or was not ours to take (the gateway's retries cannot help), 503 only when PostgreSQL is
/// unreachable or too slow (its retries will), and no 500 for any input.
/// </summary>
internal sealed partial class PushReceiver(
    IServiceScopeFactory scopes,
    Agents.SessionTokens tokens,
    EventStore store,
    RefusalLimiter refusals,
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
        PushRejection? rejection;
        try
        {
            rejection = await ReceiveAsync(http, http.RequestAborted);
        }
        catch (Exception e) when (http.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            return; // The sender went away: there is no one to answer.
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            // Kestrel gave up on the body (too slow, cut short, malformed chunks): the connection is closed after this answer.
            rejection = new PushRejection(e.StatusCode, PushRejection.InvalidParameter, $"The request body could not be read: {e.Message}", "unreadable-body");
        }
        catch (Exception e)
        {
            // A bug, not the input's fault: said so in the gateway's shape, and logged with its stack.
            LogUnexpected(e);
            rejection = new PushRejection(StatusCodes.Status500InternalServerError, PushRejection.InternalError,
                "CallbackHub failed unexpectedly; the events were not stored. Retry later.", "internal-error");
        }

        http.Response.ContentType = "application/json; charset=utf-8";
        if (rejection is null)
        {
            await http.Response.Body.WriteAsync(SuccessBody, http.RequestAborted);
            return;
        }

        if (rejection.IsRefusal && !refusals.AllowRefusal(http.Connection.RemoteIpAddress))
        {
            rejection = rejection with
            {
                StatusCode = StatusCodes.Status429TooManyRequests,
                Message = $"Too many pushes from this address were refused; this one too: {rejection.Message}",
                Reason = "refusals-rate-limited",
            };
            http.Response.Headers.RetryAfter = "1";
        }
        else
        {
            LogRejected(rejection.StatusCode, rejection.Reason, rejection.Message);
        }

        metrics.PushRejected(rejection.Reason);
        http.Response.StatusCode = rejection.StatusCode;
        await JsonSerializer.SerializeAsync(http.Response.Body, new GatewayReply(rejection.Message, rejection.Retcode), cancellationToken: http.RequestAborted);
    }

    private async Task<PushRejection?> ReceiveAsync(HttpContext http, CancellationToken cancellationToken)
    {
        // Callbacks__CommitWithin counts from here, on the monotonic clock: the token check and the body's arrival use it up.
        var arrivedAt = Stopwatch.GetTimestamp();
        var request = http.Request;
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

        int agentId;
        try
        {
            using var authTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            authTimeout.CancelAfter(options.Value.StoreTimeout);
            // The token alone says whose push this is, before a byte of the body is read.
            var address = http.Connection.RemoteIpAddress;
            if (await tokens.AuthenticateAsync(token, options.Value.SessionCacheTtl, () => refusals.HasBudget(address), authTimeout.Token)
                is not { } authenticated)
            {
                return PushRejection.Unauthorized($"The {TokenHeader} is not the token of any signed-in agent.");
            }

            agentId = authenticated;
        }
        catch (Exception e) when (IsStoreUnavailable(e, cancellationToken))
        {
            LogTokenCheckFailed(e);
            return StoreUnavailable();
        }

        var body = await ReadBodyAsync(http, limit, cancellationToken);
        if (body.Rejection is not null)
        {
            return body.Rejection;
        }

        if (!PushParser.TryParse(body.Bytes, out var batch, out var invalid))
        {
            return invalid;
        }

        if (batch.AgentId != agentId)
        {
            return PushRejection.Unauthorized($"The {TokenHeader} is not the current token of signed-in agent {batch.AgentId}.");
        }

        // The store's deadline starts now (the time the body took to arrive is not the database's), and the push must be
        // committed within Callbacks__CommitWithin of its arrival, or not at all.
        var commitWithin = options.Value.CommitWithin - Stopwatch.GetElapsedTime(arrivedAt);
        if (commitWithin <= TimeSpan.Zero)
        {
            LogTooLateToStore(batch.AgentId, options.Value.CommitWithin);
            return StoreUnavailable();
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.StoreTimeout < commitWithin ? options.Value.StoreTimeout : commitWithin);
        try
        {
            metrics.EventsReceived(batch.Events.Count);
            var retries = new RetryRule(options.Value.DuplicateWindow, options.Value.AppendedRetriesWithoutGenTime);
            var outcome = await store.AppendAsync(batch, time.GetUtcNow(), retries, commitWithin, timeout.Token);
            if (outcome.AlreadyStored > 0)
            {
                metrics.DuplicatesDropped(outcome.AlreadyStored);
                LogDuplicate(batch.AgentId, outcome.AlreadyStored, batch.Events.Count);
            }

            if (outcome.IsDuplicate)
            {
                return null;
            }

            metrics.EventsStored(outcome.Stored);

            if (batch.Events.Skip(outcome.AlreadyStored).LastOrDefault(e => e.EventType == ShutdownServiceEvent) is { } shutdown)
            {
                await OnSignedOutByGatewayAsync(batch.AgentId, shutdown.ContentJson);
            }

            return null;
        }
        catch (PostgresException e) when (e.SqlState.StartsWith("22", StringComparison.Ordinal) || e.SqlState.StartsWith("54", StringComparison.Ordinal))
        {
            // PostgreSQL refused the data itself (PushParser lets nothing through that it knows to be unstorable): retrying the
            // same batch can never succeed, so it is not answered 503.
            return PushRejection.BadRequest($"The events cannot be stored: PostgreSQL refused them ({e.MessageText}).") with { Reason = "unstorable" };
        }
        catch (Exception e) when (IsStoreUnavailable(e, cancellationToken))
        {
            // Not stored: say so with a non-"0" retcode and the gateway re-sends the batch (every 10 s, 120 s long).
            LogStoreFailed(e, batch.AgentId);
            return StoreUnavailable();
        }
    }

    private static bool IsStoreUnavailable(Exception e, CancellationToken cancellationToken) =>
        e is NpgsqlException or TimeoutException or InvalidOperationException
        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    private static PushRejection StoreUnavailable() => new(StatusCodes.Status503ServiceUnavailable, PushRejection.InternalError,
        "The event store is unavailable; the events were not stored. Retry later.", "store-unavailable");

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
        catch (Exception e)
        {
            // Whatever went wrong (EF's DbUpdateException included), the push is answered as stored: it was.
            LogMarkLostFailed(e, agentId);
        }
    }

    private static PushRejection TooLarge(long limit) => new(StatusCodes.Status413PayloadTooLarge, PushRejection.InvalidParameter,
        $"The body is larger than the {limit} bytes accepted (Callbacks:MaxBodyBytes).", "too-large");

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        && (!media.Charset.HasValue || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Reads the whole body, within <see cref="CallbackOptions.BodyTimeout"/> and no slower than
    /// <see cref="CallbackOptions.MinBodyBytesPerSecond"/>; refused as soon as it exceeds <paramref name="limit"/>.
    /// </summary>
    private async Task<(byte[] Bytes, PushRejection? Rejection)> ReadBodyAsync(HttpContext http, long limit, CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = o.MinBodyBytesPerSecond == 0 ? null : new MinDataRate(o.MinBodyBytesPerSecond, o.MinBodyRateGrace);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(o.BodyTimeout);
        var reader = http.Request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(deadline.Token);
                var buffer = result.Buffer;
                if (buffer.Length > limit)
                {
                    reader.AdvanceTo(buffer.End);
                    return ([], TooLarge(limit));
                }

                if (result.IsCompleted)
                {
                    var bytes = buffer.ToArray();
                    reader.AdvanceTo(buffer.End);
                    return (bytes, null);
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // What is left of the body is never read: the connection cannot be reused.
            http.Response.Headers.Connection = "close";
            return ([], new PushRejection(StatusCodes.Status408RequestTimeout, PushRejection.InvalidParameter,
                $"The body did not arrive within {o.BodyTimeout.TotalSeconds:0.#} s (Callbacks__BodyTimeout).", "body-timeout"));
        }
    }

    private sealed record GatewayReply(
        [property: System.Text.Json.Serialization.JsonPropertyName("message")] string Message,
        [property: System.Text.Json.Serialization.JsonPropertyName("retcode")] string Retcode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Push refused with HTTP {Status} ({Reason}): {Detail}")]
    private partial void LogRejected(int status, string reason, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Agent {AgentId}: {Count} of the {Total} events pushed were a re-send of its last accepted batch and were dropped")]
    private partial void LogDuplicate(int agentId, int count, int total);

    [LoggerMessage(Level = LogLevel.Error, Message = "A service token could not be checked; answered 503 so the gateway retries")]
    private partial void LogTokenCheckFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "A push failed unexpectedly; answered 500")]
    private partial void LogUnexpected(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Agent {AgentId} was signed out by the gateway, but its session could not be marked lost")]
    private partial void LogMarkLostFailed(Exception exception, int agentId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Push for agent {AgentId} arrived too slowly to be committed within {CommitWithin} (Callbacks__CommitWithin): not stored, answered 503 so the gateway retries")]
    private partial void LogTooLateToStore(int agentId, TimeSpan commitWithin);

    [LoggerMessage(Level = LogLevel.Error, Message = "Push for agent {AgentId} could not be stored; answered 503 so the gateway retries")]
    private partial void LogStoreFailed(Exception exception, int agentId);
}
