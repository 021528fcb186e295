using System.Text.Json.Serialization;

namespace CallbackHub.GatewaySimulator;

/// <summary>
/// What a push-mode heartbeat's <c>service_token</c> header does to later pushes — docs/gateway-protocol.md §4
/// and §10.1 leave it open.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<HeartbeatTokenHandling>))]
public enum HeartbeatTokenHandling
{
    /// <summary>Later pushes and retries carry the newest heartbeat token.</summary>
    Adopt,

    /// <summary>The gateway keeps pushing with the sign-in token; heartbeat tokens are only checked for form.</summary>
    Ignore,
}

/// <summary>What a retried push contains — docs/gateway-protocol.md §6 and §10.2 leave it open.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PushRetryContent>))]
public enum PushRetryContent
{
    /// <summary>The failed batch again, byte for byte.</summary>
    Identical,

    /// <summary>The failed batch with events queued since appended, up to MaxEventsPerPush in all.</summary>
    AppendNewer,
}

/// <summary>
/// The behaviours that may be changed while the simulator runs (control API <c>/simulator/switches</c>,
/// <see cref="GatewaySimulatorState.Switches"/>); they start from the <c>Simulator</c> configuration.
/// </summary>
public sealed record SimulatorSwitches
{
    /// <summary><c>Simulator:HeartbeatServiceToken</c>.</summary>
    public HeartbeatTokenHandling HeartbeatServiceToken { get; init; } = HeartbeatTokenHandling.Adopt;

    /// <summary><c>Simulator:PushRetry</c>.</summary>
    public PushRetryContent PushRetry { get; init; } = PushRetryContent.Identical;

    /// <summary><c>Simulator:PushShutdownOnSignOut</c>: AgentOther_ShutdownService after logout, forcelogout, a heartbeat timeout or a control-API sign-out.</summary>
    public bool PushShutdownOnSignOut { get; init; } = true;

    /// <summary><c>Simulator:PushShutdownOnForceLogin</c>: AgentOther_ShutdownService of the session a forcelogin replaces.</summary>
    public bool PushShutdownOnForceLogin { get; init; } = true;

    /// <summary><c>Simulator:HeartbeatTimeout</c>: no heartbeat (nor sign-in) for this long signs the agent out.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary><c>Simulator:AnswerLatency</c>: every agent call waits this long (without blocking a thread), then is handled and answered.</summary>
    public TimeSpan AnswerLatency { get; init; } = TimeSpan.Zero;

    /// <summary><c>Simulator:RejectConcurrentCalls</c>: a call for an agent whose previous call is unanswered gets 000-007.</summary>
    public bool RejectConcurrentCalls { get; init; }

    internal static SimulatorSwitches From(SimulatorOptions options) => new()
    {
        HeartbeatServiceToken = options.HeartbeatServiceToken,
        PushRetry = options.PushRetry,
        PushShutdownOnSignOut = options.PushShutdownOnSignOut,
        PushShutdownOnForceLogin = options.PushShutdownOnForceLogin,
        HeartbeatTimeout = options.HeartbeatTimeout,
        AnswerLatency = options.AnswerLatency,
        RejectConcurrentCalls = options.RejectConcurrentCalls,
    };

    /// <summary>The problems of these values, or an empty list.</summary>
    internal IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!Enum.IsDefined(HeartbeatServiceToken))
        {
            problems.Add("heartbeatServiceToken must be Adopt or Ignore");
        }

        if (!Enum.IsDefined(PushRetry))
        {
            problems.Add("pushRetry must be Identical or AppendNewer");
        }

        if (HeartbeatTimeout <= TimeSpan.Zero)
        {
            problems.Add("heartbeatTimeout must be a positive TimeSpan such as 00:02:00");
        }

        if (AnswerLatency < TimeSpan.Zero)
        {
            problems.Add("answerLatency must not be negative");
        }

        return problems;
    }
}

/// <summary>Body of <c>PATCH /simulator/switches</c>: the switches to change; null leaves one as it is.</summary>
public sealed record SwitchesUpdate(
    HeartbeatTokenHandling? HeartbeatServiceToken = null,
    PushRetryContent? PushRetry = null,
    bool? PushShutdownOnSignOut = null,
    bool? PushShutdownOnForceLogin = null,
    TimeSpan? HeartbeatTimeout = null,
    TimeSpan? AnswerLatency = null,
    bool? RejectConcurrentCalls = null)
{
    internal SimulatorSwitches ApplyTo(SimulatorSwitches current) => current with
    {
        HeartbeatServiceToken = HeartbeatServiceToken ?? current.HeartbeatServiceToken,
        PushRetry = PushRetry ?? current.PushRetry,
        PushShutdownOnSignOut = PushShutdownOnSignOut ?? current.PushShutdownOnSignOut,
        PushShutdownOnForceLogin = PushShutdownOnForceLogin ?? current.PushShutdownOnForceLogin,
        HeartbeatTimeout = HeartbeatTimeout ?? current.HeartbeatTimeout,
        AnswerLatency = AnswerLatency ?? current.AnswerLatency,
        RejectConcurrentCalls = RejectConcurrentCalls ?? current.RejectConcurrentCalls,
    };
}

/// <summary>Holds the current <see cref="SimulatorSwitches"/>; readers take one consistent snapshot per decision.</summary>
internal sealed class Switchboard(Microsoft.Extensions.Options.IOptions<SimulatorOptions> options)
{
    private SimulatorSwitches current = SimulatorSwitches.From(options.Value);

    public SimulatorSwitches Current => Volatile.Read(ref current);

    /// <summary>Applies <paramref name="update"/> atomically; the problems found (nothing changes then) or an empty list.</summary>
    public IReadOnlyList<string> Update(SwitchesUpdate update)
    {
        while (true)
        {
            var before = Current;
            var after = update.ApplyTo(before);
            if (after.Problems() is { Count: > 0 } problems)
            {
                return problems;
            }

            if (ReferenceEquals(Interlocked.CompareExchange(ref current, after, before), before))
            {
                return [];
            }
        }
    }
}
