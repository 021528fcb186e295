using System.Globalization;

namespace CallbackHub.LoadTest;

/// <summary>
/// One agent's plausible working day, as the protocol's event catalogue (§7) describes it: calls ring, are
/// talked, released and wrapped up; now and then the agent goes not-ready and back. Content is shaped like the
/// gateway's, inconsistently typed values included (<c>"reason":"200"</c> but <c>"result":0</c>).
/// </summary>
internal sealed class EventCatalogue(int agentId, Random random)
{
    private readonly Queue<(string Type, string Content)> _next = new();
    private int _calls;

    public (string Type, string Content) Next()
    {
        if (_next.Count == 0)
        {
            PlanCall();
        }

        return _next.Dequeue();
    }

    private void PlanCall()
    {
        _calls++;
        var callId = $"{1_700_000_000 + (agentId * 7919 % 100_000)}-{_calls.ToString(CultureInfo.InvariantCulture)}";
        var caller = $"1380013{random.Next(1000, 9999).ToString(CultureInfo.InvariantCulture)}";
        var called = $"7{agentId.ToString(CultureInfo.InvariantCulture)}";
        _next.Enqueue(("AgentEvent_Ringing",
            $$"""{"caller":"{{caller}}","called":"{{called}}","callid":"{{callId}}","type":"main","feature":"0","mediaAbility":"1","transfer":"","transfrom":""}"""));
        _next.Enqueue(("AgentEvent_Talking",
            $$"""{"caller":"{{caller}}","called":"{{called}}","callid":"{{callId}}","type":"main","feature":"0","mediaAbility":"1"}"""));
        if (random.Next(2) == 0)
        {
            _next.Enqueue(("AgentEvent_Customer_Release", $$"""{"callid":"{{callId}}","number":"{{caller}}"}"""));
        }

        _next.Enqueue(("AgentEvent_Call_Release", $"\"{callId}\""));
        _next.Enqueue(("AgentState_Work", "null"));
        _next.Enqueue(("AgentState_Ready", "null"));
        if (_calls % 4 == 0)
        {
            _next.Enqueue(("AgentState_SetNotReady_Success", $$"""{"reason":"{{200 + random.Next(0, 5)}}"}"""));
            _next.Enqueue(("AgentOther_PhoneRelease", """{"phoneState":3}"""));
            _next.Enqueue(("AgentState_CancelNotReady_Success", "null"));
            _next.Enqueue(("AgentState_Ready", "null"));
        }
    }
}
