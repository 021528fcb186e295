namespace CallbackHub.GatewaySimulator.Gateway;

/// <summary>The gateway's answer codes used by the simulator (api-cec cec_07_0580).</summary>
internal static class RetCodes
{
    public const string Success = "0";
    public const string BadUrlParameter = "000-002";
    public const string NoPermission = "000-003";
    public const string CalledRepeatedly = "000-007";
    public const string InvalidParameter = "100-001";
    public const string AlreadySignedIn = "100-002";
    public const string WrongPassword = "100-004";
    public const string NotSignedIn = "100-006";
    public const string InternalError = "100-007";
    public const string ForceLoginNotAllowed = "100-015";
    public const string SignInInProgress = "100-021";
    public const string AccountLocked = "110-016";
}
