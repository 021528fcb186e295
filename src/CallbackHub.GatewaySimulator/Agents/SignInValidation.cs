using System.Globalization;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>The field limits of the sign-in body; a violation is answered with 100-001 and this message.</summary>
internal static class SignInValidation
{
    public static string? Check(SignInRequest request)
    {
        // Required but may be empty: Huawei's own example signs in with "" (sites without CTI passwords).
        if (request.Password is null || request.Password.Length > 32)
        {
            return "password is required (it may be empty) and at most 32 characters";
        }

        if (string.IsNullOrEmpty(request.PhoneNum) || request.PhoneNum.Length > 24)
        {
            return "phonenum is required and at most 24 characters";
        }

        if (request.AgentType is not (null or 4 or 11))
        {
            return "agenttype must be 4 or 11";
        }

        if (request.Status is not (null or 3 or 4 or 5))
        {
            return "status must be 3, 4 or 5";
        }

        if (request.Ip is { Length: > 0 } ip && !IsIPv4(ip))
        {
            return "ip must be an IPv4 address of at most 15 characters";
        }

        if (request.VcPhoneNumber is { Length: > 24 })
        {
            return "vcPhoneNumber must be at most 24 characters";
        }

        if (request.ServiceToken is { Length: > 0 } token && !ServiceTokens.IsWellFormed(token))
        {
            return "serviceToken must be at most 50 letters and digits";
        }

        if (request.CallBackUri is { Length: > 0 } uri && (uri.Length > 200 || !IsHttpUri(uri)))
        {
            return "callBackUri must be an absolute http(s) URI of at most 200 characters";
        }

        return request.ServiceWorkId is { Length: > 30 } ? "serviceworkid must be at most 30 characters" : null;
    }

    private static bool IsIPv4(string ip)
    {
        var parts = ip.Split('.');
        return ip.Length <= 15
            && parts.Length == 4
            && parts.All(p => p.Length is >= 1 and <= 3
                && p.All(char.IsAsciiDigit)
                && int.Parse(p, CultureInfo.InvariantCulture) <= 255);
    }

    private static bool IsHttpUri(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
}

/// <summary>The gateway allows no special characters in a service token.</summary>
internal static class ServiceTokens
{
    public static bool IsWellFormed(string token) => token.Length is >= 1 and <= 50 && token.All(char.IsAsciiLetterOrDigit);
}
