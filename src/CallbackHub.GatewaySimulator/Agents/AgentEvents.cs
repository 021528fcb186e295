using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>The events the gateway itself raises when a session starts or ends.</summary>
internal static class AgentEvents
{
    /// <summary>
    /// docs/gateway-protocol.md §1: status 4 (default) → InService, Ready; 3 → InService, Ready, SetNotReady_Success;
    /// 5 → InService, Ready, Work; phone linkage adds linkageCapability (after InService).
    /// </summary>
    public static IReadOnlyList<SimulatedEvent> SignedIn(SignInRequest request)
    {
        var events = new List<SimulatedEvent> { SimulatedEvent.Of("AgentOther_InService") };
        if (request.PhoneLinkage == true)
        {
            events.Add(SimulatedEvent.Of("AgentEvent_linkageCapability", new { result = 0 }));
        }

        events.Add(SimulatedEvent.Of("AgentState_Ready"));
        switch (request.Status)
        {
            case 3:
                events.Add(SimulatedEvent.Of("AgentState_SetNotReady_Success", new { reason = "0" }));
                break;
            case 5:
                events.Add(SimulatedEvent.Of("AgentState_Work"));
                break;
        }

        return events;
    }

    /// <summary>The last event of every session; loginTime is a string of epoch milliseconds, as the gateway sends it.</summary>
    public static SimulatedEvent ShutdownService(AgentSession session) =>
        SimulatedEvent.Of("AgentOther_ShutdownService", new { loginTime = session.LoginTimeMs.ToString(System.Globalization.CultureInfo.InvariantCulture) });
}
