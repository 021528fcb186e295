using System.Collections.Concurrent;
using CallbackHub.GatewaySimulator.Agents;

namespace CallbackHub.GatewaySimulator.Gateway;

/// <summary>
/// Runs every agent call (everything under <c>onlineagent/{agentid}</c>) as the switches say: after the
/// AnswerLatency, waited without blocking a thread, and — with RejectConcurrentCalls — answering
/// <c>000-007</c> "interface called repeatedly" at once to a call for an agent whose previous call has not
/// been answered yet (docs/gateway-protocol.md, introduction, and §9).
/// </summary>
internal sealed class AgentCalls(Switchboard switches, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, int> inFlight = new(StringComparer.Ordinal);

    public async ValueTask<object?> RunAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var agentId = http.Request.RouteValues["agentid"] as string ?? "";
        var settings = switches.Current;
        var before = inFlight.AddOrUpdate(agentId, 1, (_, calls) => calls + 1) - 1;
        try
        {
            if (settings.RejectConcurrentCalls && before > 0)
            {
                return GatewayAnswer.Reply(http, new GatewayOutcome(RetCodes.CalledRepeatedly,
                    "interface called repeatedly: the previous call for this agent has not been answered yet"));
            }

            if (settings.AnswerLatency > TimeSpan.Zero)
            {
                await Task.Delay(settings.AnswerLatency, time, http.RequestAborted);
            }

            return await next(context);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The caller gave up while the gateway was "busy"; nothing was done, and no one reads an answer.
            return Results.Empty;
        }
        finally
        {
            inFlight.AddOrUpdate(agentId, 0, (_, calls) => calls - 1);
            inFlight.TryRemove(new KeyValuePair<string, int>(agentId, 0));
        }
    }
}
