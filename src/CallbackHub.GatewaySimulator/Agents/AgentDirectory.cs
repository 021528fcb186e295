using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>All agents the simulator has seen, by agent id.</summary>
internal sealed class AgentDirectory(IOptions<SimulatorOptions> options)
{
    private readonly ConcurrentDictionary<string, Agent> agents = new();
    private readonly int heartbeatTimesKept = options.Value.HeartbeatTimesKept;

    public Agent GetOrAdd(string agentId) => agents.GetOrAdd(agentId, id => new Agent(id, heartbeatTimesKept));

    public Agent? Find(string agentId) => agents.GetValueOrDefault(agentId);

    /// <summary>Every agent, ordered by id (numerically, as ids are digits without leading zeros).</summary>
    public IEnumerable<Agent> All => agents.Values.OrderBy(a => a.Id.Length).ThenBy(a => a.Id, StringComparer.Ordinal);

    /// <summary>Every agent in no particular order, without copying or sorting (for periodic scans).</summary>
    public IEnumerable<Agent> Unordered => agents.Select(pair => pair.Value);
}
