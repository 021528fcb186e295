using Microsoft.AspNetCore.Http.Features;

namespace CallbackHub.Hosting;

/// <summary>
/// Every ProblemDetails answer says in a sentence what is wrong — also the ones ASP.NET Core writes by itself (an
/// unknown route, a wrong method), which come with a title only.
/// </summary>
internal static class ProblemSentences
{
    public static void Fill(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        if (problem.Detail is not null)
        {
            return;
        }

        var request = context.HttpContext.Request;
        var path = request.Path.Value;
        problem.Detail = problem.Status switch
        {
            StatusCodes.Status404NotFound =>
                $"Nothing is served at {path}. The management API is under /api/agents (described at /openapi/v1.json); the gateway pushes to POST /callbacks/agent-events.",
            StatusCodes.Status405MethodNotAllowed =>
                $"{request.Method} is not allowed on {path}; it takes {context.HttpContext.Response.Headers.Allow}.",
            StatusCodes.Status400BadRequest =>
                $"The request to {path} could not be read: check its parameters and its JSON body against /openapi/v1.json.",
            StatusCodes.Status415UnsupportedMediaType => "The body must be JSON, sent with Content-Type: application/json.",
            StatusCodes.Status500InternalServerError => "The service failed unexpectedly; the error is in its log.",
            _ => context.HttpContext.Features.Get<IHttpResponseFeature>()?.ReasonPhrase,
        };
    }
}
