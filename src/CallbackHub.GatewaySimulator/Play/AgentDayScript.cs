using System.Globalization;
using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Play;

/// <summary>
/// An endless, plausible working day of one agent: calls ring, are talked and released, followed by
/// wrap-up; now and then the agent takes a break. Content is shaped and typed like the real events.
/// </summary>
internal static class AgentDayScript
{
    private static readonly string[] BreakReasons = ["1", "4", "200", "201"];

    public static IEnumerable<SimulatedEvent> Events(string phoneNumber, Random random, TimeProvider time)
    {
        for (var call = 1; ; call++)
        {
            var callId = string.Create(CultureInfo.InvariantCulture, $"{time.GetUtcNow().ToUnixTimeSeconds()}-{call}");
            var caller = string.Create(CultureInfo.InvariantCulture, $"0{random.Next(200_000_000, 999_999_999)}");
            var called = phoneNumber.Length > 0 ? phoneNumber : "70001";
            yield return SimulatedEvent.Of("AgentEvent_Ringing", new
            {
                caller,
                called,
                callid = callId,
                type = "main",
                feature = "0",
                mediaAbility = "1",
                transfer = "",
                transfrom = "",
            });
            yield return SimulatedEvent.Of("AgentEvent_Talking", new { caller, called, callid = callId, type = "main", feature = "0", mediaAbility = "1" });
            if (random.Next(2) == 0)
            {
                // The customer hangs up first; otherwise the agent does and only Call_Release follows.
                yield return SimulatedEvent.Of("AgentEvent_Customer_Release", new { callid = callId, number = caller });
            }

            yield return SimulatedEvent.Of("AgentEvent_Call_Release", callId);
            yield return SimulatedEvent.Of("AgentState_Work");
            yield return SimulatedEvent.Of("AgentState_Ready");
            if (random.Next(4) == 0)
            {
                yield return SimulatedEvent.Of("AgentState_SetNotReady_Success", new { reason = BreakReasons[random.Next(BreakReasons.Length)] });
                yield return SimulatedEvent.Of("AgentState_CancelNotReady_Success");
                yield return SimulatedEvent.Of("AgentState_Ready");
            }
        }
    }
}
