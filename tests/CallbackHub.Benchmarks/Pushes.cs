using System.Text;

namespace CallbackHub.Benchmarks;

/// <summary>Pushes shaped like the gateway's (docs/gateway-protocol.md §6–7): 1, 3 and 5 events.</summary>
internal static class Pushes
{
    private static readonly string[] Events =
    [
        """{"eventType":"AgentEvent_Ringing","workNo":"1001","eventGenTime":1784529722590,"content":{"caller":"13800138000","called":"71001","callid":"1700001234-15","type":"main","feature":"0","mediaAbility":"1","transfer":"","transfrom":""}}""",
        """{"eventType":"AgentEvent_Talking","workNo":"1001","eventGenTime":1784529722790,"content":{"caller":"13800138000","called":"71001","callid":"1700001234-15","type":"main","feature":"0","mediaAbility":"1"}}""",
        """{"eventType":"AgentEvent_Call_Release","workNo":"1001","eventGenTime":1784529752790,"content":"1700001234-15"}""",
        """{"eventType":"AgentState_Work","workNo":"1001","eventGenTime":1784529752791,"content":null}""",
        """{"eventType":"AgentState_SetNotReady_Success","workNo":"1001","eventGenTime":1784529762791,"content":{"reason":"200"}}""",
    ];

    public static byte[] Body(int events) =>
        Encoding.UTF8.GetBytes($$"""{"workNo":"1001","eventList":[{{string.Join(',', Events.Take(events))}}]}""");
}
