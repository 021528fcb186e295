using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

/// <summary>An agent CallbackHub signs in at start and keeps signed in (<c>Agents__0__AgentId</c>, … or a roster file).</summary>
internal sealed record RosterAgent : SignInRequest
{
    public int AgentId { get; init; }
}

/// <summary>
/// Where the roster comes from: a few agents in configuration (<c>Agents__N__…</c>), and any number in a JSON file
/// (<c>Roster__File</c>), read in one pass — .NET's configuration binder takes time growing with the square of the
/// entries, minutes for ten thousand agents.
/// </summary>
internal sealed class RosterOptions
{
    public List<RosterAgent> Agents { get; } = [];

    /// <summary>A JSON array of sign-in bodies with an <c>agentId</c>: <c>[{"agentId":1001,"password":"…","phoneNumber":"…"}]</c>.</summary>
    public string? File { get; set; }

    /// <summary>The agents read from <see cref="File"/>, or why it could not be read.</summary>
    public List<RosterAgent> FromFile { get; private set; } = [];

    public string? FileError { get; private set; }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public void LoadFile()
    {
        if (string.IsNullOrWhiteSpace(File))
        {
            return;
        }

        try
        {
            using var stream = System.IO.File.OpenRead(File);
            FromFile = JsonSerializer.Deserialize<List<RosterAgent>>(stream, Json) ?? [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            FileError = $"Roster__File '{File}' cannot be read as a JSON array of agents: {e.Message}";
        }
    }

    public static IEnumerable<string> Validate(RosterOptions o)
    {
        if (o.FileError is not null)
        {
            yield return o.FileError;
        }

        var seen = new HashSet<int>();
        var entries = o.Agents.Select((agent, i) => (agent, name: $"Agents__{i}"))
            .Concat(o.FromFile.Select((agent, i) => (agent, name: $"Roster__File entry {i}")));
        var problems = 0;
        foreach (var (agent, name) in entries)
        {
            // A broken file of 20,000 agents should not print 20,000 lines.
            if (problems == 20)
            {
                yield return "… and possibly more roster problems.";
                yield break;
            }

            if (!AgentIds.IsValid(agent.AgentId))
            {
                problems++;
                yield return $"{name}__AgentId must be a number from {AgentIds.Range}.";
            }
            else if (!seen.Add(agent.AgentId))
            {
                problems++;
                yield return $"{name}__AgentId {agent.AgentId} is listed twice.";
            }

            foreach (var (field, errors) in agent.Validate())
            {
                problems++;
                yield return $"{name}__{char.ToUpperInvariant(field[0])}{field[1..]}: {errors[0]}";
            }
        }
    }
}

/// <summary>The roster, by agent id.</summary>
internal sealed class Roster(IOptions<RosterOptions> options)
{
    private readonly Dictionary<int, RosterAgent> _agents = options.Value.Agents.Concat(options.Value.FromFile)
        .GroupBy(a => a.AgentId).ToDictionary(g => g.Key, g => g.First());

    public IReadOnlyCollection<RosterAgent> Agents => _agents.Values;

    public RosterAgent Get(int agentId) => _agents[agentId];
}

/// <summary>
/// Sign-in credentials this instance knows, so that it can sign a lost session in again: the roster's, and
/// those of agents signed in through this instance's API. Held in memory only — never stored, never logged.
/// </summary>
internal sealed class Credentials
{
    private readonly ConcurrentDictionary<int, SignInRequest> _known = new();

    public Credentials(Roster roster)
    {
        foreach (var agent in roster.Agents)
        {
            _known[agent.AgentId] = agent;
        }
    }

    public void Remember(int agentId, SignInRequest request) => _known[agentId] = request;

    public void Forget(int agentId) => _known.TryRemove(agentId, out _);

    public bool TryGet(int agentId, out SignInRequest request) => _known.TryGetValue(agentId, out request!);
}
