using CallbackHub.Callbacks;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CallbackHub.Agents;

/// <summary>The management API: sign agents in and out, see their sessions.</summary>
internal static class AgentEndpoints
{
    public static IEndpointRouteBuilder MapAgentEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/agents").AddEndpointFilter<ApiKeyFilter>().WithTags("Agents");
        api.MapGet("/", ListAsync);
        api.MapGet("/{agentId}/session", GetAsync);
        api.MapPut("/{agentId}/session", SignInAsync);
        api.MapDelete("/{agentId}/session", SignOutAsync);
        return app;
    }

    private static async Task<Ok<IReadOnlyList<AgentSessionView>>> ListAsync(AgentSessions sessions, CancellationToken cancellationToken) =>
        TypedResults.Ok(await sessions.ListAsync(cancellationToken));

    private static async Task<Results<Ok<AgentSessionView>, ProblemHttpResult>> GetAsync(
        string agentId, AgentSessions sessions, CancellationToken cancellationToken)
    {
        if (!TryParseAgentId(agentId, out var id, out var invalid))
        {
            return invalid;
        }

        var session = await sessions.GetAsync(id, cancellationToken);
        return session is null ? ToProblem(AgentProblem.NotSignedIn(id)) : TypedResults.Ok(session);
    }

    private static async Task<Results<Ok<AgentSessionView>, ValidationProblem, ProblemHttpResult>> SignInAsync(
        string agentId, SignInRequest? request, AgentSessions sessions, CancellationToken cancellationToken)
    {
        if (!TryParseAgentId(agentId, out var id, out var invalid))
        {
            return invalid;
        }

        if (request is null)
        {
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { [""] = ["A JSON body with password and phoneNumber is required."] });
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
        string agentId, AgentSessions sessions, CancellationToken cancellationToken)
    {
        if (!TryParseAgentId(agentId, out var id, out var invalid))
        {
            return invalid;
        }

        var outcome = await sessions.SignOutAsync(id, cancellationToken);
        return outcome.Problem is null ? TypedResults.Ok(outcome.Session!) : ToProblem(outcome.Problem);
    }

    private static bool TryParseAgentId(string value, out int agentId, out ProblemHttpResult invalid)
    {
        invalid = null!;
        if (int.TryParse(value, System.Globalization.NumberStyles.None, null, out agentId) && PushParser.IsValidAgentId(agentId))
        {
            return true;
        }

        invalid = TypedResults.Problem(
            statusCode: StatusCodes.Status400BadRequest,
            title: "Invalid agent id",
            detail: $"The agent id must be a whole number from {PushParser.MinAgentId} to {PushParser.MaxAgentId}; '{value}' is not.");
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
