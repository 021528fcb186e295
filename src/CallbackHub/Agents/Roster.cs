using System.Collections.Concurrent;

namespace CallbackHub.Agents;

/// <summary>An agent CallbackHub signs in at start and keeps signed in (<c>Agents__0__AgentId</c>, …).</summary>
internal sealed record RosterAgent : SignInRequest
{
    public int AgentId { get; init; }
}

internal sealed class RosterOptions
{
    public List<RosterAgent> Agents { get; } = [];

    public static IEnumerable<string> Validate(RosterOptions o)
    {
        var seen = new HashSet<int>();
        for (var i = 0; i < o.Agents.Count; i++)
        {
            var agent = o.Agents[i];
            if (!Callbacks.PushParser.IsValidAgentId(agent.AgentId))
            {
                yield return $"Agents__{i}__AgentId must be a number from 101 to 59999.";
            }
            else if (!seen.Add(agent.AgentId))
            {
                yield return $"Agents__{i}__AgentId {agent.AgentId} is listed twice.";
            }

            foreach (var (field, errors) in agent.Validate())
            {
                yield return $"Agents__{i}__{char.ToUpperInvariant(field[0])}{field[1..]}: {errors[0]}";
            }
        }
    }
}

/// <summary>
/// Sign-in credentials this instance knows, so that it can sign a lost session in again: the roster's, and
/// those of agents signed in through this instance's API. Held in memory only — never stored, never logged.
/// </summary>
internal sealed class Credentials
{
    private readonly ConcurrentDictionary<int, SignInRequest> _known = new();

    public Credentials(Microsoft.Extensions.Options.IOptions<RosterOptions> roster)
    {
        foreach (var agent in roster.Value.Agents)
        {
            _known[agent.AgentId] = agent;
        }
    }

    public void Remember(int agentId, SignInRequest request) => _known[agentId] = request;

    public void Forget(int agentId) => _known.TryRemove(agentId, out _);

    public bool TryGet(int agentId, out SignInRequest request) => _known.TryGetValue(agentId, out request!);
}
