namespace CallbackHub.GatewaySimulator.Play;

/// <summary>
/// What the agent-day player plays: <paramref name="EventsPerSecond"/> in total, shared round-robin by the
/// chosen agents that are signed in in push mode. Agents are <paramref name="AgentIds"/> if given, else
/// <paramref name="FirstAgentId"/> … +<paramref name="Agents"/>-1 if Agents is above zero, else every push-mode agent.
/// </summary>
public sealed record PlaySettings(
    double EventsPerSecond,
    int Agents = 0,
    int FirstAgentId = 1001,
    IReadOnlyList<string>? AgentIds = null,
    int? Seed = null);

/// <summary>Whether the player runs, with what, and how many events it has queued since it started.</summary>
public sealed record PlayStatus(bool Running, PlaySettings? Settings, DateTimeOffset? StartedAt, long EventsPlayed);
