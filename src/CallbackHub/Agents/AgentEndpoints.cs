using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

/// <summary>The management API: sign agents in and out, see their sessions.</summary>
internal static class AgentEndpoints
{
    public static IEndpointRouteBuilder MapAgentEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/agents").AddEndpointFilter<ApiKeyFilter>().WithTags("Agents");
        api.MapGet("/", ListAsync);
        api.MapGet("/{agentId}/session", GetAsync);
        // The body is read by hand, after the API key check, so that a malformed one gets a sentence saying what is wrong.
        api.MapPut("/{agentId}/session", SignInAsync).Accepts<SignInRequest>("application/json");
        api.MapDelete("/{agentId}/session", SignOutAsync);
        return app;
    }

    private static async Task<Ok<IReadOnlyList<AgentSessionView>>> ListAsync(SessionStore sessions, CancellationToken cancellationToken) =>
        TypedResults.Ok(await sessions.ListViewsAsync(cancellationToken));

    private static async Task<Results<Ok<AgentSessionView>, ProblemHttpResult>> GetAsync(
        string agentId, SessionStore sessions, CancellationToken cancellationToken)
    {
        if (!TryParseAgentId(agentId, out var id, out var invalid))
        {
            return invalid;
        }

        var session = await sessions.GetViewAsync(id, cancellationToken);
        return session is null ? ToProblem(AgentProblem.NotSignedIn(id)) : TypedResults.Ok(session);
    }

    private static async Task<Results<Ok<AgentSessionView>, ValidationProblem, ProblemHttpResult>> SignInAsync(
        string agentId, HttpRequest http, SignIns sessions, CancellationToken cancellationToken)
    {
        if (!TryParseAgentId(agentId, out var id, out var invalid))
        {
            return invalid;
        }

        var (request, unreadable) = await ReadSignInAsync(http, cancellationToken);
        if (request is null)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [""] = [unreadable!] },
                detail: unreadable, title: "The sign-in body cannot be read");
        }

        var errors = request.Validate();
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var outcome = await sessions.SignInAsync(id, request, automatic: false, cancellationToken);
        return outcome.Problem is null ? TypedResults.Ok(outcome.Session!) : ToProblem(outcome.Problem);
    }

    private static async Task<Results<Ok<AgentSessionView>, ProblemHttpResult>> SignOutAsync(
        string agentId, SignIns sessions, CancellationToken cancellationToken)
    {
        if (!TryParseAgentId(agentId, out var id, out var invalid))
        {
            return invalid;
        }

        var outcome = await sessions.SignOutAsync(id, cancellationToken);
        return outcome.Problem is null ? TypedResults.Ok(outcome.Session!) : ToProblem(outcome.Problem);
    }

    private static async Task<(SignInRequest? Request, string? Problem)> ReadSignInAsync(HttpRequest http, CancellationToken cancellationToken)
    {
        const string Expected = "A JSON body with password and phoneNumber is required, sent with Content-Type: application/json.";
        if (!http.HasJsonContentType())
        {
            return (null, Expected);
        }

        try
        {
            // From the stream, not ReadFromJsonAsync: its pipe reader is left mid-read by a JSON error, and Kestrel then
            // fails the connection instead of answering.
            var json = http.HttpContext.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
            var request = await JsonSerializer.DeserializeAsync<SignInRequest>(http.Body, json, cancellationToken);
            return request is null ? (null, Expected) : (request, null);
        }
        catch (JsonException e)
        {
            return (null, DescribeJsonError(e));
        }
    }

    /// <summary>System.Text.Json's error, said for a person: which field has the wrong type, or where the JSON breaks.</summary>
    private static string DescribeJsonError(JsonException e)
    {
        var field = e.Path is { Length: > 2 } path ? path[2..] : null;
        if (field is not null && e.Message.StartsWith("The JSON value could not be converted to ", StringComparison.Ordinal))
        {
            var expected = e.Message switch
            {
                var m when m.Contains("Int32", StringComparison.Ordinal) => "a whole number",
                var m when m.Contains("Boolean", StringComparison.Ordinal) => "true or false",
                var m when m.Contains("String", StringComparison.Ordinal) => "a string",
                _ => "of another JSON type",
            };
            return $"{field} must be {expected}.";
        }

        return e.LineNumber is { } line && e.BytePositionInLine is { } position
            ? $"The body is not valid JSON (line {line + 1}, byte {position + 1}): {e.Message.Split(" Path:")[0]}"
            : $"The body is not valid JSON: {e.Message}";
    }

    private static bool TryParseAgentId(string value, out int agentId, out ProblemHttpResult invalid)
    {
        invalid = null!;
        if (int.TryParse(value, System.Globalization.NumberStyles.None, null, out agentId) && AgentIds.IsValid(agentId))
        {
            return true;
        }

        invalid = TypedResults.Problem(
            statusCode: StatusCodes.Status400BadRequest,
            title: "Invalid agent id",
            detail: $"The agent id must be a whole number from {AgentIds.Range}; '{value}' is not.");
        return false;
    }

    private static ProblemHttpResult ToProblem(AgentProblem problem)
    {
        var extensions = new Dictionary<string, object?>();
        if (problem.Retcode is not null)
        {
            extensions["retcode"] = problem.Retcode;
            extensions["gatewayMessage"] = problem.GatewayMessage;
        }

        return TypedResults.Problem(statusCode: problem.Status, title: problem.Title, detail: problem.Detail, extensions: extensions);
    }
}
