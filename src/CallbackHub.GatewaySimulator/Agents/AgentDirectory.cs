using System.Collections.Concurrent;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>All agents the simulator has seen, by agent id.</summary>
internal sealed class AgentDirectory : IDisposable
{
    private readonly ConcurrentDictionary<string, Agent> agents = new();

    public Agent GetOrAdd(string agentId) => agents.GetOrAdd(agentId, id => new Agent(id));

    public Agent? Find(string agentId) => agents.GetValueOrDefault(agentId);

    public IEnumerable<Agent> All => agents.Values.OrderBy(a => a.Id.Length).ThenBy(a => a.Id, StringComparer.Ordinal);

    public void Dispose()
    {
        foreach (var agent in agents.Values)
        {
            agent.Dispose();
        }
    }
}
