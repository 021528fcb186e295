using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using CallbackHub.GatewaySimulator.Agents;
using CallbackHub.GatewaySimulator.Pushing;
using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator.Gateway;

/// <summary>The CC-Gateway agent API under /agentgateway/resource/.</summary>
internal static class GatewayEndpoints
{
    public static IEndpointRouteBuilder MapGatewayEndpoints(this IEndpointRouteBuilder app)
    {
        var agent = app.MapGroup("/agentgateway/resource/onlineagent/{agentid}");
        agent.AddEndpointFilter((context, next) => context.HttpContext.RequestServices.GetRequiredService<AgentCalls>().RunAsync(context, next));
        agent.MapPut("", (string agentid, HttpContext http, AgentLifecycle lifecycle, IOptions<SimulatorOptions> options) =>
            SignInAsync(agentid, http, lifecycle, options.Value, force: false));
        agent.MapPut("/forcelogin", (string agentid, HttpContext http, AgentLifecycle lifecycle, IOptions<SimulatorOptions> options) =>
            SignInAsync(agentid, http, lifecycle, options.Value, force: true));
        agent.MapPost("/handshake", Handshake);
        agent.MapPut("/updateGuid", UpdateGuid);
        agent.MapDelete("/logout", (string agentid, HttpContext http, AgentLifecycle lifecycle) =>
            GatewayAnswer.Reply(http, lifecycle.SignOut(agentid, GuidOf(http), "logout")));
        agent.MapDelete("/forcelogout", (string agentid, HttpContext http, AgentLifecycle lifecycle) =>
            GatewayAnswer.Reply(http, lifecycle.SignOut(agentid, GuidOf(http), "forcelogout")));
        agent.MapDelete("/forcelogoutwithreason/{reason}", ForceLogoutWithReason);
        agent.MapPost("/resetskill/{autoflag}", ResetSkill);
        app.MapGet("/agentgateway/resource/agentevent/{agentid}", PollAsync);
        return app;
    }

    private static async Task<IResult> SignInAsync(string agentid, HttpContext http, AgentLifecycle lifecycle, SimulatorOptions options, bool force)
    {
        SignInRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<SignInRequest>(http.Request.Body, SignInJson.Options, http.RequestAborted);
        }
        catch (JsonException ex)
        {
            var field = ex.Path is { Length: > 2 } path ? $" ({path[2..]} has an unusable value)" : "";
            return GatewayAnswer.Reply(http, new GatewayOutcome(RetCodes.InvalidParameter, $"the body must be a JSON object of sign-in fields{field}"));
        }

        if (request is null)
        {
            return GatewayAnswer.Reply(http, new GatewayOutcome(RetCodes.InvalidParameter, "the body must be a JSON object of sign-in fields"));
        }

        var outcome = lifecycle.SignIn(agentid, request, force);
        if (!outcome.Succeeded)
        {
            return GatewayAnswer.Reply(http, outcome);
        }

        http.Response.Headers["Guid"] = outcome.Guid;
        SetGuid(http, outcome.Guid!);
        var result = SignInResult.Of(options.VdnId, agentid, outcome.Session!, options.ServerName);
        return GatewayAnswer.Reply(http, outcome, result);
    }

    private static IResult Handshake(string agentid, HttpContext http, AgentLifecycle lifecycle)
    {
        var token = http.Request.Headers["service_token"] is { Count: > 0 } values ? values.ToString() : null;
        var outcome = lifecycle.Heartbeat(agentid, GuidOf(http), token);
        if (outcome is { Succeeded: true, Guid: { } guid })
        {
            SetGuid(http, guid);
        }

        return GatewayAnswer.Reply(http, outcome);
    }

    private static IResult UpdateGuid(string agentid, HttpContext http, AgentLifecycle lifecycle)
    {
        var outcome = lifecycle.UpdateGuid(agentid, GuidOf(http));
        if (!outcome.Succeeded)
        {
            return GatewayAnswer.Reply(http, outcome);
        }

        SetGuid(http, outcome.Guid!);
        return GatewayAnswer.Reply(http, outcome, new GuidResult(outcome.Guid!));
    }

    private static IResult ForceLogoutWithReason(string agentid, string reason, HttpContext http, AgentLifecycle lifecycle)
    {
        if (!int.TryParse(reason, NumberStyles.None, CultureInfo.InvariantCulture, out var code) || code is < 1 or > 255)
        {
            return GatewayAnswer.Reply(http, new GatewayOutcome(RetCodes.InvalidParameter, "the reason must be a number from 1 to 255"));
        }

        return GatewayAnswer.Reply(http, lifecycle.SignOut(agentid, GuidOf(http), $"forcelogout:{code}"));
    }

    /// <summary>
    /// <c>POST resetskill/{autoflag}?skillid=1;2;3&amp;phonelinkage=0|1</c> (docs/gateway-protocol.md §1): autoflag true
    /// signs into the agent's configured skill queues, false into the skillid list (';'-separated, at most 4000 characters).
    /// </summary>
    private static IResult ResetSkill(string agentid, string autoflag, HttpContext http, AgentLifecycle lifecycle)
    {
        var query = http.Request.Query;
        if (!bool.TryParse(autoflag, out var auto))
        {
            return BadUrlParameter(http, "autoflag must be true or false");
        }

        if (query["phonelinkage"] is { Count: > 0 } linkage && linkage.ToString() is not ("0" or "1"))
        {
            return BadUrlParameter(http, "phonelinkage must be 0 or 1");
        }

        List<int>? skills = null;
        if (!auto)
        {
            var list = query["skillid"].ToString();
            var ids = list.Split(';', StringSplitOptions.RemoveEmptyEntries);
            if (list.Length > 4000 || ids.Length == 0 || !ids.All(IsSkillId))
            {
                return BadUrlParameter(http, "skillid must be skill ids separated by ';' (at most 4000 characters) when autoflag is false");
            }

            skills = [.. ids.Select(id => int.Parse(id, CultureInfo.InvariantCulture))];
        }

        return GatewayAnswer.Reply(http, lifecycle.ResetSkills(agentid, GuidOf(http), skills));
    }

    private static bool IsSkillId(string id) =>
        id.Length is >= 1 and <= 9 && id.All(char.IsAsciiDigit) && int.Parse(id, CultureInfo.InvariantCulture) > 0;

    private static IResult BadUrlParameter(HttpContext http, string message) =>
        GatewayAnswer.Reply(http, new GatewayOutcome(RetCodes.BadUrlParameter, message));

    /// <summary>Poll mode: answers with the next event, or with none after Simulator:PollWait.</summary>
    private static async Task<IResult> PollAsync(string agentid, HttpContext http, AgentLifecycle lifecycle, IOptions<SimulatorOptions> options, TimeProvider time)
    {
        ChannelReader<QueuedEvent>? events = null;
        var outcome = lifecycle.WithSession(agentid, GuidOf(http), (agent, _, _) =>
        {
            events = agent.PollEvents.Reader;
            return GatewayOutcome.Success;
        });
        if (!outcome.Succeeded)
        {
            return GatewayAnswer.Reply(http, outcome);
        }

        using var timeout = new CancellationTokenSource(options.Value.PollWait, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, http.RequestAborted);
        QueuedEvent? next = null;
        try
        {
            if (await events!.WaitToReadAsync(wait.Token))
            {
                events.TryRead(out next);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // Nothing happened within the long-poll window: answer with no event, like the gateway.
        }

        GatewayAnswer.Record(http, RetCodes.Success);
        return Results.Text(PushBody.WritePollAnswer(agentid, next?.Event), "application/json; charset=UTF-8");
    }

    private static string? GuidOf(HttpContext http) =>
        http.Request.Headers["Guid"] is { Count: > 0 } values ? values[0] : null;

    // Set-GUID carries the value to adopt; the JSESSIONID cookie keeps a load balancer sticky to this server.
    private static void SetGuid(HttpContext http, string guid)
    {
        http.Response.Headers["Set-GUID"] = $"JSESSIONID={guid}";
        http.Response.Cookies.Append("JSESSIONID", guid, new CookieOptions { Path = "/agentgateway", HttpOnly = true });
    }
}
