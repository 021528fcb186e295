namespace CallbackHub.Storage;

/// <summary>The session states as they appear in the database and the API.</summary>
internal static class AgentSessionStates
{
    public static string ToText(AgentSessionState state) => state switch
    {
        AgentSessionState.SigningIn => "signing-in",
        AgentSessionState.Active => "active",
        AgentSessionState.Lost => "lost",
        AgentSessionState.SignedOut => "signed-out",
        AgentSessionState.Failed => "failed",
        AgentSessionState.SigningOut => "signing-out",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static AgentSessionState Parse(string text) => text switch
    {
        "signing-in" => AgentSessionState.SigningIn,
        "active" => AgentSessionState.Active,
        "lost" => AgentSessionState.Lost,
        "signed-out" => AgentSessionState.SignedOut,
        "failed" => AgentSessionState.Failed,
        "signing-out" => AgentSessionState.SigningOut,
        _ => throw new FormatException($"Unknown agent session state '{text}'."),
    };
}
