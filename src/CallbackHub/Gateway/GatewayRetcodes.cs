namespace CallbackHub.Gateway;

/// <summary>What CallbackHub does about a retcode (see <see cref="GatewayRetcodes.Handle"/>).</summary>
internal enum RetcodeHandling
{
    /// <summary>"0": done.</summary>
    Success,

    /// <summary>The gateway has no (valid) session for the agent: it must be signed in again.</summary>
    SessionGone,

    /// <summary><c>100-002</c>: the gateway still has the agent signed in.</summary>
    AlreadySignedIn,

    /// <summary>Passing trouble (switch-over, a call still running, an internal error): try again later, change nothing.</summary>
    BackOff,

    /// <summary>Trying again cannot help and may hurt (a wrong password retried locks the account).</summary>
    Hopeless,
}

/// <summary>
/// The gateway's retcodes (docs/gateway-protocol.md §9) in one place: what each means, in words for error messages,
/// and how CallbackHub handles it.
/// </summary>
internal static class GatewayRetcodes
{
    public const string AlreadySignedIn = "100-002";
    public const string NotSignedIn = "100-006";
    public const string AlreadySignedOut = "100-008";

    private static readonly Dictionary<string, (string Meaning, RetcodeHandling Handling)> Known = new()
    {
        ["0"] = ("success", RetcodeHandling.Success),
        ["000-001"] = ("wrong way of getting events", RetcodeHandling.Hopeless),
        ["000-002"] = ("a URL parameter is wrong", RetcodeHandling.Hopeless),
        ["000-003"] = ("no permission or authentication expired", RetcodeHandling.SessionGone),
        ["000-004"] = ("the agent is being switched over to another gateway", RetcodeHandling.BackOff),
        ["000-006"] = ("a message parameter is wrong", RetcodeHandling.Hopeless),
        ["000-007"] = ("the interface was called again before it answered", RetcodeHandling.BackOff),
        ["100-001"] = ("a parameter is empty or invalid", RetcodeHandling.Hopeless),
        [AlreadySignedIn] = ("the agent is already signed in", RetcodeHandling.AlreadySignedIn),
        ["100-003"] = ("a resource was unavailable during sign-in", RetcodeHandling.BackOff),
        ["100-004"] = ("wrong account or password", RetcodeHandling.Hopeless),
        ["100-005"] = ("an invalid sign-out parameter", RetcodeHandling.Hopeless),
        [NotSignedIn] = ("the agent is not signed in", RetcodeHandling.SessionGone),
        ["100-007"] = ("internal error during an agent operation", RetcodeHandling.BackOff),
        [AlreadySignedOut] = ("the agent is already signed out", RetcodeHandling.SessionGone),
        ["100-009"] = ("error setting the agent state", RetcodeHandling.BackOff),
        ["100-010"] = ("state error at sign-out", RetcodeHandling.BackOff),
        ["100-011"] = ("an invalid sign-in parameter", RetcodeHandling.Hopeless),
        ["100-012"] = ("wrong agent type", RetcodeHandling.Hopeless),
        ["100-013"] = ("an invalid phone number", RetcodeHandling.Hopeless),
        ["100-014"] = ("the phone is not in the configured range", RetcodeHandling.Hopeless),
        ["100-015"] = ("the agent is signed in elsewhere and cannot be forced out", RetcodeHandling.Hopeless),
        ["100-016"] = ("invalid IP address", RetcodeHandling.Hopeless),
        ["100-017"] = ("uPortal authentication failed", RetcodeHandling.Hopeless),
        ["100-018"] = ("vdnId mismatch", RetcodeHandling.Hopeless),
        ["100-019"] = ("an invalid skill-queue parameter", RetcodeHandling.Hopeless),
        ["100-020"] = ("the password has expired", RetcodeHandling.Hopeless),
        ["100-021"] = ("a sign-in is already in progress", RetcodeHandling.BackOff),
        ["105-001"] = ("disaster recovery in progress", RetcodeHandling.BackOff),
        ["105-002"] = ("disaster recovery in progress", RetcodeHandling.BackOff),
        ["105-003"] = ("disaster recovery in progress", RetcodeHandling.BackOff),
        ["105-004"] = ("disaster recovery in progress", RetcodeHandling.BackOff),
        ["105-005"] = ("the Guid does not match after disaster recovery", RetcodeHandling.SessionGone),
        ["105-006"] = ("the Guid does not match after disaster recovery", RetcodeHandling.SessionGone),
        ["105-007"] = ("the session must be signed in again after disaster recovery", RetcodeHandling.SessionGone),
        ["110-016"] = ("the account is locked", RetcodeHandling.Hopeless),
        ["999-001"] = ("invalid server configuration", RetcodeHandling.BackOff),
    };

    public static string Describe(string retcode) =>
        Known.TryGetValue(retcode, out var known) ? known.Meaning : "an error the gateway documents no meaning for";

    /// <summary>An unknown retcode is taken as passing trouble: retried with backoff, never a reason to drop a session.</summary>
    public static RetcodeHandling Handle(string retcode) =>
        Known.TryGetValue(retcode, out var known) ? known.Handling : RetcodeHandling.BackOff;
}
