using System.Collections.Concurrent;

namespace CallbackHub.Agents;

/// <summary>
/// New service tokens sent on a heartbeat the gateway has not confirmed yet, kept (in memory only) so the next
/// heartbeat sends the same one: the gateway may have taken it even if we never saw its answer.
/// </summary>
internal sealed class PendingTokens
{
    private readonly ConcurrentDictionary<int, string> _tokens = new();

    public void Remember(int agentId, string token) => _tokens[agentId] = token;

    public void Forget(int agentId) => _tokens.TryRemove(agentId, out _);

    public bool TryGet(int agentId, out string token) => _tokens.TryGetValue(agentId, out token!);
}
