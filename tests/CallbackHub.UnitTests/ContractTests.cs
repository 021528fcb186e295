using CallbackHub.Contracts;

namespace CallbackHub.UnitTests;

public sealed class ContractTests
{
    [Theory]
    [InlineData("AgentState_Ready", 1001, "AgentState.AgentState_Ready.1001")]
    [InlineData("AgentEvent_Call_Release", 49999, "AgentEvent.AgentEvent_Call_Release.49999")]
    [InlineData("Unknown", 101, "Unknown.Unknown.101")]
    [InlineData("AgentChat_New.Type", 101, "AgentChat.AgentChat_New_Type.101")]
    public void Routing_key_is_category_type_and_agent(string eventType, int agentId, string expected) =>
        Assert.Equal(expected, AgentEventTopology.RoutingKey(eventType, agentId));
}
