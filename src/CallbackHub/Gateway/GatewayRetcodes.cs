namespace CallbackHub.Gateway;

/// <summary>The gateway's error codes (docs/gateway-protocol.md §9), in words, for error messages.</summary>
internal static class GatewayRetcodes
{
    public const string AuthExpired = "000-003";
    public const string NotSignedIn = "100-006";
    public const string AlreadySignedOut = "100-008";

    public static string Describe(string retcode) => retcode switch
    {
        "000-003" => "no permission or authentication expired",
        "100-001" => "a parameter is empty or invalid",
        "100-002" => "the agent is already signed in",
        "100-003" => "a resource was unavailable during sign-in",
        "100-004" => "wrong account or password",
        "100-006" => "the agent is not signed in",
        "100-007" => "internal error during an agent operation",
        "100-008" => "the agent is already signed out",
        "100-012" => "wrong agent type",
        "100-015" => "the agent is signed in elsewhere and cannot be forced out",
        "100-016" => "invalid IP address",
        "100-020" => "the password has expired",
        "100-021" => "a sign-in is already in progress",
        "110-016" => "the account is locked",
        "999-001" => "invalid server configuration",
        _ => "an error the gateway documents no meaning for",
    };
}
