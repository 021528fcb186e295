namespace CallbackHub.GatewaySimulator;

/// <summary>How the gateway treats the session Guid (CC-Gateway AUTHMODE).</summary>
public enum AuthMode
{
    /// <summary>AUTHMODE=2, the gateway's default: the Guid rotates and old values expire.</summary>
    Dynamic,

    /// <summary>AUTHMODE=1, legacy: the Guid from sign-in stays valid for the whole session.</summary>
    Static,
}

/// <summary>Everything under the <c>Simulator</c> configuration section.</summary>
public sealed class SimulatorOptions
{
    public const string Section = "Simulator";

    public AuthMode AuthMode { get; set; } = AuthMode.Dynamic;

    /// <summary>Dynamic mode: a heartbeat at least this long after the current Guid was issued gets a new one.</summary>
    public TimeSpan GuidRotationInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Dynamic mode: a replaced Guid is still accepted until this long after it was issued.</summary>
    public TimeSpan GuidExpiry { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>No heartbeat for this long signs the agent out (a switch: changeable at run time).</summary>
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>How many of its newest accepted heartbeat times each agent keeps for GET /simulator/heartbeats.</summary>
    public int HeartbeatTimesKept { get; set; } = 20;

    /// <summary>EVENT_PUSH_FAIL_INTERVALTIME: a failed push batch is re-sent after this long.</summary>
    public TimeSpan PushRetryInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>EVENT_PUSH_FAIL_TOTALTIME: continuous push failure this long forces the agent out.</summary>
    public TimeSpan PushFailTotal { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>One push attempt that takes longer than this counts as a failure.</summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many queued events of one agent may travel in one push.</summary>
    public int MaxEventsPerPush { get; set; } = 5;

    /// <summary>Newer gateways stamp each pushed event with <c>eventGenTime</c>; older ones do not.</summary>
    public bool IncludeEventGenTime { get; set; } = true;

    /// <summary>Whether a forced sign-in first pushes AgentOther_ShutdownService for the replaced session.</summary>
    public bool PushShutdownOnForceLogin { get; set; } = true;

    /// <summary>
    /// Whether logout, forcelogout, a heartbeat timeout and a control-API sign-out push AgentOther_ShutdownService
    /// (docs/gateway-protocol.md §5 and §10.3: it "will not always be received").
    /// </summary>
    public bool PushShutdownOnSignOut { get; set; } = true;

    /// <summary>Whether a heartbeat's service_token changes the token of later pushes (docs/gateway-protocol.md §10.1).</summary>
    public HeartbeatTokenHandling HeartbeatServiceToken { get; set; } = HeartbeatTokenHandling.Adopt;

    /// <summary>What a retried push carries (docs/gateway-protocol.md §10.2).</summary>
    public PushRetryContent PushRetry { get; set; } = PushRetryContent.Identical;

    /// <summary>How long every agent call (sign-in, heartbeat, sign-out, resetskill…) takes before it is handled and answered.</summary>
    public TimeSpan AnswerLatency { get; set; } = TimeSpan.Zero;

    /// <summary>Answer 000-007 to a call for an agent whose previous call has not been answered yet.</summary>
    public bool RejectConcurrentCalls { get; set; }

    /// <summary>After a sign-out, sign-in answers 100-021 for this long (zero: sign-out completes at once).</summary>
    public TimeSpan SignOutDuration { get; set; } = TimeSpan.Zero;

    /// <summary>How long GET agentevent (poll mode) waits for an event before answering with none.</summary>
    public TimeSpan PollWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>eventpush.ssl.trustAll: accept any certificate of a callback URL.</summary>
    public bool TrustAllCertificates { get; set; }

    /// <summary>PEM or DER file of a CA that callback certificates may chain to (besides the system store).</summary>
    public string? TrustedCaFile { get; set; }

    /// <summary>Appears in sign-in results and as the route suffix of every Guid (<c>…​.AgentGateway0</c>).</summary>
    public string ServerName { get; set; } = "AgentGateway0";

    public int VdnId { get; set; } = 1;

    /// <summary>Recorded requests and push attempts kept for the control API (oldest dropped first).</summary>
    public int MaxRecorded { get; set; } = 10_000;

    /// <summary>Per agent id; agents not listed accept any password.</summary>
    public Dictionary<string, AccountOptions> Accounts { get; } = [];

    public PlayOptions Play { get; set; } = new();
}

/// <summary><c>Simulator:Accounts:{agentId}</c>.</summary>
public sealed class AccountOptions
{
    /// <summary>When set, sign-in with another password answers 100-004.</summary>
    public string? Password { get; set; }

    /// <summary>Sign-in answers 110-016.</summary>
    public bool Locked { get; set; }

    /// <summary>When false, forcelogin of a signed-in agent answers 100-015.</summary>
    public bool ForceLoginAllowed { get; set; } = true;

    /// <summary>The agent's configured skill queues: what resetskill/true signs it into (none when not set).</summary>
    public List<int> Skills { get; } = [];

    /// <summary>resetskill answers 100-007 (internal error during an agent operation).</summary>
    public bool ResetSkillFails { get; set; }
}

/// <summary><c>Simulator:Play</c>: the agent-day player started at boot when EventsPerSecond is above zero.</summary>
public sealed class PlayOptions
{
    /// <summary>Play for agents FirstAgentId … FirstAgentId+Agents-1; 0 plays for every push-mode agent.</summary>
    public int Agents { get; set; }

    public int FirstAgentId { get; set; } = 1001;

    /// <summary>Total rate over all played agents; 0 leaves the player stopped at boot.</summary>
    public double EventsPerSecond { get; set; }

    /// <summary>Fixes the random callers, call ids and break reasons, for repeatable runs.</summary>
    public int? Seed { get; set; }
}
