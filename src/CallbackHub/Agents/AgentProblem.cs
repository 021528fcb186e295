using CallbackHub.Gateway;

namespace CallbackHub.Agents;

/// <summary>Why an agent operation did not happen, shaped for a ProblemDetails answer.</summary>
internal sealed record AgentProblem(int Status, string Title, string Detail, string? Retcode = null, string? GatewayMessage = null)
{
    public static AgentProblem NotSignedIn(int agentId) =>
        new(StatusCodes.Status404NotFound, "Not signed in", $"Agent {agentId} is not signed in.");

    public static AgentProblem GatewayUnavailable(GatewayUnavailableException e) =>
        new(StatusCodes.Status502BadGateway, "Gateway unavailable", e.Message);

    /// <summary>The gateway answered with a non-"0" retcode: a client-side mistake, a conflict, or its own failure.</summary>
    public static AgentProblem GatewayRefused(string operation, GatewayAnswer answer)
    {
        var status = answer.Retcode switch
        {
            GatewayRetcodes.AlreadySignedIn or GatewayRetcodes.AlreadySignedOut or "100-015" or "100-021" => StatusCodes.Status409Conflict,
            _ when GatewayRetcodes.Handle(answer.Retcode) == RetcodeHandling.Hopeless => StatusCodes.Status422UnprocessableEntity,
            _ => StatusCodes.Status502BadGateway,
        };
        var meaning = GatewayRetcodes.Describe(answer.Retcode);
        return new AgentProblem(status, $"The gateway refused the {operation}",
            $"The gateway refused the {operation} with retcode {answer.Retcode} ({meaning}): {answer.Message}", answer.Retcode, answer.Message);
    }
}
