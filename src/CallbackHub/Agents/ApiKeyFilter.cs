using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

/// <summary>Every <c>/api</c> request must carry <c>Management:ApiKey</c> in <c>X-Api-Key</c>.</summary>
internal sealed class ApiKeyFilter(IOptions<ManagementOptions> options) : IEndpointFilter
{
    public const string HeaderName = "X-Api-Key";

    // Hashing both sides first makes the comparison constant-time regardless of the presented key's length.
    private readonly byte[] _expected = SHA256.HashData(Encoding.UTF8.GetBytes(options.Value.ApiKey));

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var presented = context.HttpContext.Request.Headers[HeaderName].ToString();
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        if (presented.Length == 0 || !CryptographicOperations.FixedTimeEquals(hash, _expected))
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Unauthorized",
                detail: $"A valid {HeaderName} header is required for the management API.");
        }

        return await next(context);
    }
}
