namespace CallbackHub.Callbacks;

/// <summary>
/// Why a push was refused, as the gateway expects to read it: an HTTP status, a non-"0" retcode in the
/// gateway's vocabulary (any non-"0" makes the gateway retry), and a sentence saying what is wrong.
/// </summary>
internal sealed record PushRejection(int StatusCode, string Retcode, string Message, string Reason)
{
    /// <summary>The gateway's code for "parameter empty or invalid", which its docs also use for a bad token.</summary>
    public const string InvalidParameter = "100-001";
    public const string InternalError = "100-007";

    public static PushRejection BadRequest(string message) => new(StatusCodes.Status400BadRequest, InvalidParameter, message, "malformed");

    public static PushRejection Unauthorized(string message) => new(StatusCodes.Status401Unauthorized, InvalidParameter, message, "unauthorized");

    /// <summary>The sender's doing, not ours (4xx): counted against its address by <see cref="RefusalLimiter"/>.</summary>
    public bool IsRefusal => StatusCode is >= 400 and < 500;
}
