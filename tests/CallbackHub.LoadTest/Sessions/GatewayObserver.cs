using System.Diagnostics;
using CallbackHub.GatewaySimulator.Recording;
using Microsoft.AspNetCore.Http;

namespace CallbackHub.LoadTest.Sessions;

/// <summary>
/// What the in-process gateway simulator answered, counted without its bounded request log (which keeps the newest
/// 10,000 requests only): every agent call by operation and retcode, each agent's successful sign-ins (so a second
/// one, e.g. after a SIGKILL, is seen whatever the number of agents), and every push attempt by HTTP status.
/// </summary>
internal sealed class GatewayObserver(int agents)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Operation, string Retcode), long> _calls = [];
    private readonly Dictionary<string, int> _signIns = new(StringComparer.Ordinal);
    private readonly List<(long At, string AgentId)> _extraSignIns = [];
    private readonly Dictionary<string, long> _pushes = new(StringComparer.Ordinal);

    /// <summary>Stopwatch timestamp when the last of the agents had signed in for the first time; 0 until then.</summary>
    public long AllSignedInAt { get; private set; }

    public int AgentsSignedIn
    {
        get
        {
            lock (_gate)
            {
                return _signIns.Count;
            }
        }
    }

    /// <summary>Called after the simulator answered a request under /agentgateway (its retcode is on the recorded request).</summary>
    public void Observe(HttpContext http)
    {
        const string prefix = "/agentgateway/resource/onlineagent/";
        var path = http.Request.Path.Value ?? "";
        if (!path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var rest = path[prefix.Length..].Split('/', 2);
        var (agentId, action) = (rest[0], rest.Length > 1 ? rest[1] : "");
        var operation = (http.Request.Method, action) switch
        {
            ("PUT", "") => "sign-in",
            ("PUT", "forcelogin") => "forcelogin",
            ("POST", "handshake") => "heartbeat",
            ("PUT", "updateGuid") => "updateGuid",
            ("DELETE", _) => "sign-out",
            ("POST", _) when action.StartsWith("resetskill", StringComparison.Ordinal) => "resetskill",
            _ => $"{http.Request.Method} {action}",
        };
        var retcode = http.Features.Get<RecordedRequest>()?.Retcode ?? "no answer";
        var now = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            _calls[(operation, retcode)] = _calls.GetValueOrDefault((operation, retcode)) + 1;
            if (operation is "sign-in" or "forcelogin" && retcode == "0")
            {
                var count = _signIns[agentId] = _signIns.GetValueOrDefault(agentId) + 1;
                if (count > 1)
                {
                    _extraSignIns.Add((now, agentId));
                }
                else if (_signIns.Count == agents && AllSignedInAt == 0)
                {
                    AllSignedInAt = now;
                }
            }
        }
    }

    /// <summary>One push attempt of the simulator and how it ended: an HTTP status, or <c>error</c>/<c>timeout</c>.</summary>
    public void Push(string outcome)
    {
        lock (_gate)
        {
            _pushes[outcome] = _pushes.GetValueOrDefault(outcome) + 1;
        }
    }

    public IReadOnlyDictionary<(string Operation, string Retcode), long> Calls()
    {
        lock (_gate)
        {
            return new Dictionary<(string, string), long>(_calls);
        }
    }

    public IReadOnlyList<(long At, string AgentId)> ExtraSignIns()
    {
        lock (_gate)
        {
            return [.. _extraSignIns];
        }
    }

    public IReadOnlyDictionary<string, long> Pushes()
    {
        lock (_gate)
        {
            return new Dictionary<string, long>(_pushes, StringComparer.Ordinal);
        }
    }
}

/// <summary>Puts the observer in front of the simulator's own middleware (an IStartupFilter runs outermost).</summary>
internal sealed class GatewayObserverStartupFilter(GatewayObserver observer) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (http, inner) =>
        {
            await inner(http);
            observer.Observe(http);
        });
        next(app);
    };
}

/// <summary>Counts the simulator's push attempts by HTTP status (added to its push HttpClient).</summary>
internal sealed class PushCountingHandler(GatewayObserver observer) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            var response = await base.SendAsync(request, cancellationToken);
            observer.Push(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            return response;
        }
        catch (HttpRequestException)
        {
            observer.Push("error");
            throw;
        }
        catch (OperationCanceledException)
        {
            observer.Push("timeout");
            throw;
        }
    }
}
