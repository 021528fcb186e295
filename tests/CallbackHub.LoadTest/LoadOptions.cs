using System.Globalization;

namespace CallbackHub.LoadTest;

/// <summary>What a run measures: event throughput and integrity (<c>push</c>, the default) or keeping sessions (<c>sessions</c>).</summary>
internal enum LoadMode
{
    Push,
    Sessions,
}

/// <summary>What happens to the CallbackHub instances at mid-run: sigkill and rolling in sessions mode, freeze in push mode.</summary>
internal enum Fault
{
    None,
    SigKill,
    Rolling,

    /// <summary>Push mode: SIGSTOP the instance that published most so far, SIGCONT it <c>--freeze-for</c> later.</summary>
    Freeze,
}

/// <summary>What push mode pushes to: CallbackHub, the plain receiver, or both one after the other (the comparison).</summary>
internal enum Target
{
    Hub,
    Plain,
    Both,
}

/// <summary>Push mode's scenarios: a load run (default) or the backlog drain with the broker stopped meanwhile.</summary>
internal enum Scenario
{
    Load,
    Backlog,
}

/// <summary>How the sessions mode hands CallbackHub its roster.</summary>
internal enum RosterSource
{
    /// <summary>Try <c>Roster__File</c> with one agent first; fall back to <c>Agents__N__…</c> (small N only) if it is not taken.</summary>
    Auto,
    File,
    Environment,
}

/// <summary>Command-line options: <c>--name value</c> pairs; see README.md for the list.</summary>
internal sealed class LoadOptions
{
    public LoadMode Mode { get; private init; } = LoadMode.Push;

    public int Agents { get; private init; } = 200;
    public int FirstAgentId { get; private init; } = 1001;

    /// <summary>Offered events/s (open loop, scheduled); 0 = closed loop, every agent pushes as fast as it is answered.</summary>
    public double Rate { get; private init; }

    public TimeSpan Duration { get; private init; } = TimeSpan.FromSeconds(70);

    /// <summary>
    /// Not measured. 40 s by default: a fresh .NET process re-compiles its hot methods with profile data for about the
    /// first 30 s under load (6–7 s of JIT per 10 s in CallbackHub), and the comparison is of services that run for days.
    /// </summary>
    public TimeSpan WarmUp { get; private init; } = TimeSpan.FromSeconds(40);
    public int MinEventsPerPush { get; private init; } = 1;
    public int MaxEventsPerPush { get; private init; } = 5;

    /// <summary>Concurrency of the two baselines; CallbackHub's dispatcher publishes 64 agents at a time by default.</summary>
    public int Concurrency { get; private init; } = 64;

    public TimeSpan BaselineDuration { get; private init; } = TimeSpan.FromSeconds(15);
    public bool Baselines { get; private init; } = true;
    public string Postgres { get; private init; } = "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=callbackhub_loadtest;Maximum Pool Size=40";
    public string RabbitMq { get; private init; } = "amqp://guest:guest@127.0.0.1:5672/callbackhub-loadtest";

    /// <summary>The published CallbackHub.dll to start (as separate processes, one per instance).</summary>
    public string? HubDll { get; private init; }

    public int Instances { get; private init; } = 1;

    /// <summary>Extra settings for the CallbackHub processes, e.g. <c>--hub-env Outbox__MaxConcurrentAgents=128</c>.</summary>
    public IReadOnlyList<string> HubEnvironment { get; private init; } = [];

    public int Seed { get; private init; } = 42;

    // Push mode: the comparison, the backlog drain and the freeze.

    public Target Target { get; private init; } = Target.Hub;

    /// <summary>With <c>--target both</c>: also run each target open loop at half the rate the plain receiver reached.</summary>
    public bool HalfLoad { get; private init; }

    /// <summary>
    /// With <c>--target both</c>: closed-loop pairs (plain receiver, then CallbackHub) run this many times; the summary gives each
    /// pair's ratio and their median. On a shared machine one pair moves by ±30 %.
    /// </summary>
    public int Rounds { get; private init; } = 1;

    public Scenario Scenario { get; private init; } = Scenario.Load;

    /// <summary>Events pushed while the broker is stopped (<c>--scenario backlog</c>).</summary>
    public int BacklogEvents { get; private init; } = 100_000;

    /// <summary>How long a frozen instance stays stopped (<c>--fault freeze</c>).</summary>
    public TimeSpan FreezeFor { get; private init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait after the load for every accepted event to arrive.</summary>
    public TimeSpan DrainTimeout { get; private init; } = TimeSpan.FromSeconds(60);

    /// <summary>The node <c>rabbitmqctl</c> stops and starts (<c>-n</c>); null = rabbitmqctl's default node.</summary>
    public string? RabbitMqNode { get; private init; }

    // Sessions mode (--mode sessions).

    /// <summary>The simulator's AnswerLatency switch: every agent call to the gateway waits this long.</summary>
    public TimeSpan GatewayLatency { get; private init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>The simulator's HeartbeatServiceToken switch: <c>Adopt</c> or <c>Ignore</c>.</summary>
    public string HeartbeatTokens { get; private init; } = "Adopt";

    public Fault Fault { get; private init; } = Fault.None;

    /// <summary>When the fault starts, from the start of the first instance; default mid-run.</summary>
    public TimeSpan? FaultAt { get; private init; }

    /// <summary>After a SIGKILL, how long until the replacement is started.</summary>
    public TimeSpan RestartDelay { get; private init; } = TimeSpan.FromSeconds(10);

    /// <summary>Events/s the simulator's agent-day player pushes over all signed-in agents; 0 = none.</summary>
    public double EventsPerSecond { get; private init; } = 200;

    /// <summary>Passed as <c>Gateway__MaxConcurrentCalls</c> only when given: the service's default is what is measured.</summary>
    public int? GatewayMaxConcurrentCalls { get; private init; }

    public RosterSource Roster { get; private init; } = RosterSource.Auto;

    /// <summary>How often ownership (GET /api/agents), CPU, memory and metrics are sampled.</summary>
    public TimeSpan SampleInterval { get; private init; } = TimeSpan.FromSeconds(15);

    private static readonly string[] SessionsOnly =
        ["gateway-latency", "heartbeat-tokens", "restart-delay", "events-per-second", "gateway-max-concurrent-calls", "roster", "sample-interval"];

    private static readonly string[] PushOnly =
        ["rate", "warmup", "events-per-push", "concurrency", "baseline-duration", "baselines", "target", "half-load", "rounds", "scenario", "backlog-events",
         "freeze-for", "drain-timeout", "rabbitmq-node"];

    public static LoadOptions Parse(string[] args)
    {
        var values = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"Expected '--name value', got '{args[i]}'.");
            }

            var name = args[i][2..];
            if (!values.TryGetValue(name, out var list))
            {
                values[name] = list = [];
            }

            list.Add(args[++i]);
        }

        string? Get(string name) => values.Remove(name, out var v) ? v[^1] : null;
        int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        TimeSpan Seconds(string name, TimeSpan fallback) => Get(name) is { } v ? ParseDuration(v, TimeSpan.FromSeconds(1)) : fallback;

        var mode = Get("mode") switch
        {
            null or "push" => LoadMode.Push,
            "sessions" => LoadMode.Sessions,
            var other => throw new ArgumentException($"--mode must be push or sessions, got '{other}'."),
        };
        if (mode == LoadMode.Sessions)
        {
            return ParseSessions(values, Get, Int, Seconds);
        }

        var sessionsOnly = SessionsOnly.Where(values.ContainsKey).ToList();
        if (sessionsOnly.Count > 0)
        {
            throw new ArgumentException($"{string.Join(", ", sessionsOnly.Select(k => "--" + k))} only apply to --mode sessions.");
        }

        var defaults = new LoadOptions();
        var target = Get("target") switch
        {
            null or "hub" => Target.Hub,
            "plain" => Target.Plain,
            "both" => Target.Both,
            var other => throw new ArgumentException($"--target must be hub, plain or both, got '{other}'."),
        };
        var scenario = Get("scenario") switch
        {
            null or "load" => Scenario.Load,
            "backlog" => Scenario.Backlog,
            var other => throw new ArgumentException($"--scenario must be load or backlog, got '{other}'."),
        };

        // The comparison and the backlog drain measure as the issue did: 3-event pushes, the broker ceiling at 512 in flight.
        var issueDefaults = target == Target.Both || scenario == Scenario.Backlog;
        var perPush = (Get("events-per-push") ?? (issueDefaults ? "3" : "1-5")).Split('-');
        var options = new LoadOptions
        {
            Target = target,
            Scenario = scenario,
            HalfLoad = Get("half-load") is "true" or "on" or "yes",
            Rounds = Int("rounds", 1),
            BacklogEvents = Int("backlog-events", defaults.BacklogEvents),
            Fault = Get("fault") switch
            {
                null or "none" => Fault.None,
                "freeze" => Fault.Freeze,
                var other => throw new ArgumentException($"--fault must be none or freeze in push mode (sigkill and rolling are sessions mode's), got '{other}'."),
            },
            FaultAt = Get("fault-at") is { } at ? ParseDuration(at, TimeSpan.FromSeconds(1)) : null,
            FreezeFor = Seconds("freeze-for", defaults.FreezeFor),
            DrainTimeout = Seconds("drain-timeout", scenario == Scenario.Backlog ? TimeSpan.FromMinutes(5) : defaults.DrainTimeout),
            RabbitMqNode = Get("rabbitmq-node"),
            Agents = Int("agents", defaults.Agents),
            FirstAgentId = Int("first-agent", defaults.FirstAgentId),
            Rate = Get("rate") is { } rate && rate != "max" ? double.Parse(rate, CultureInfo.InvariantCulture) : 0,
            Duration = Seconds("duration", scenario == Scenario.Backlog ? TimeSpan.FromMinutes(5) : defaults.Duration),
            WarmUp = Seconds("warmup", defaults.WarmUp),
            MinEventsPerPush = int.Parse(perPush[0], CultureInfo.InvariantCulture),
            MaxEventsPerPush = int.Parse(perPush[^1], CultureInfo.InvariantCulture),
            Concurrency = Int("concurrency", issueDefaults ? 512 : defaults.Concurrency),
            BaselineDuration = Seconds("baseline-duration", defaults.BaselineDuration),
            Baselines = Get("baselines") is not ("false" or "off" or "no"),
            Postgres = Get("postgres") ?? defaults.Postgres,
            RabbitMq = Get("rabbitmq") ?? defaults.RabbitMq,
            HubDll = Get("hub-dll"),
            Instances = Int("instances", defaults.Instances),
            HubEnvironment = values.Remove("hub-env", out var env) ? env : [],
            Seed = Int("seed", defaults.Seed),
        };

        if (values.Count > 0)
        {
            throw new ArgumentException($"Unknown option(s): {string.Join(", ", values.Keys.Select(k => "--" + k))}.");
        }

        if (options.Target != Target.Plain && (options.HubDll is null || !File.Exists(options.HubDll)))
        {
            throw new ArgumentException("--hub-dll must name the published CallbackHub.dll (dotnet publish src/CallbackHub -c Release -o <dir>).");
        }

        if (options.Agents < 1 || options.Instances < 1 || options.MinEventsPerPush < 1
            || options.MaxEventsPerPush < options.MinEventsPerPush || options.WarmUp >= options.Duration)
        {
            throw new ArgumentException("--agents and --instances must be ≥ 1, --events-per-push like 1-5, --warmup shorter than --duration.");
        }

        if (options.HalfLoad && options.Target != Target.Both)
        {
            throw new ArgumentException("--half-load true needs --target both: the half rate is the plain receiver's closed-loop rate of the same run.");
        }

        if (options.Rounds < 1 || options.Rounds > 1 && options.Target != Target.Both)
        {
            throw new ArgumentException("--rounds must be ≥ 1, and more than 1 only with --target both (pairs of closed-loop legs).");
        }

        if (options.Target == Target.Both && options.Rate > 0)
        {
            throw new ArgumentException("--target both measures closed loop (--rate max); add --half-load true for the open-loop half-rate runs.");
        }

        if (options.Scenario == Scenario.Backlog && (options.Target != Target.Hub || options.Fault != Fault.None || options.BacklogEvents < 1))
        {
            throw new ArgumentException("--scenario backlog runs against CallbackHub (--target hub), without --fault, with --backlog-events ≥ 1.");
        }

        if (options.Fault == Fault.Freeze && (options.Instances < 2 || options.Target != Target.Hub
            || options.FaultAt is { } f && (f <= TimeSpan.Zero || f >= options.Duration)))
        {
            throw new ArgumentException("--fault freeze needs --instances ≥ 2 and --target hub, and --fault-at inside --duration.");
        }

        return options;
    }

    private static LoadOptions ParseSessions(
        Dictionary<string, List<string>> values, Func<string, string?> get, Func<string, int, int> integer, Func<string, TimeSpan, TimeSpan> seconds)
    {
        var pushOnly = PushOnly.Where(values.ContainsKey).ToList();
        if (pushOnly.Count > 0)
        {
            throw new ArgumentException($"{string.Join(", ", pushOnly.Select(k => "--" + k))} only apply to --mode push.");
        }

        var defaults = new LoadOptions();
        var options = new LoadOptions
        {
            Mode = LoadMode.Sessions,
            Agents = integer("agents", 10_000),
            FirstAgentId = integer("first-agent", defaults.FirstAgentId),
            Duration = seconds("duration", TimeSpan.FromMinutes(10)),
            Postgres = get("postgres") ?? defaults.Postgres,
            RabbitMq = get("rabbitmq") ?? defaults.RabbitMq,
            HubDll = get("hub-dll"),
            Instances = integer("instances", defaults.Instances),
            HubEnvironment = values.Remove("hub-env", out var env) ? env : [],
            Seed = integer("seed", defaults.Seed),
            GatewayLatency = get("gateway-latency") is { } latency ? ParseDuration(latency, TimeSpan.FromMilliseconds(1)) : defaults.GatewayLatency,
            HeartbeatTokens = get("heartbeat-tokens") switch
            {
                null or "adopt" => "Adopt",
                "ignore" => "Ignore",
                var other => throw new ArgumentException($"--heartbeat-tokens must be adopt or ignore, got '{other}'."),
            },
            Fault = get("fault") switch
            {
                null or "none" => Fault.None,
                "sigkill" => Fault.SigKill,
                "rolling" => Fault.Rolling,
                var other => throw new ArgumentException($"--fault must be none, sigkill or rolling, got '{other}'."),
            },
            FaultAt = get("fault-at") is { } at ? ParseDuration(at, TimeSpan.FromSeconds(1)) : null,
            RestartDelay = seconds("restart-delay", defaults.RestartDelay),
            EventsPerSecond = get("events-per-second") is { } eps ? double.Parse(eps, CultureInfo.InvariantCulture) : defaults.EventsPerSecond,
            GatewayMaxConcurrentCalls = get("gateway-max-concurrent-calls") is { } calls ? int.Parse(calls, CultureInfo.InvariantCulture) : null,
            Roster = get("roster") switch
            {
                null or "auto" => RosterSource.Auto,
                "file" => RosterSource.File,
                "env" => RosterSource.Environment,
                var other => throw new ArgumentException($"--roster must be auto, file or env, got '{other}'."),
            },
            SampleInterval = seconds("sample-interval", defaults.SampleInterval),
        };

        if (values.Count > 0)
        {
            throw new ArgumentException($"Unknown option(s): {string.Join(", ", values.Keys.Select(k => "--" + k))}.");
        }

        if (options.HubDll is null || !File.Exists(options.HubDll))
        {
            throw new ArgumentException("--hub-dll must name the published CallbackHub.dll (dotnet publish src/CallbackHub -c Release -o <dir>).");
        }

        if (options.Agents < 1 || options.Instances < 1 || options.FirstAgentId < 101 || options.FirstAgentId + options.Agents - 1 > 999_999)
        {
            throw new ArgumentException("--agents and --instances must be ≥ 1, and the agents 101–999999 (--first-agent … + --agents − 1).");
        }

        if (options.Duration < TimeSpan.FromSeconds(30) || options.SampleInterval < TimeSpan.FromSeconds(1) || options.EventsPerSecond < 0
            || options.GatewayLatency < TimeSpan.Zero || options.FaultAt is { } f && (f <= TimeSpan.Zero || f >= options.Duration))
        {
            throw new ArgumentException("--duration must be ≥ 30 s, --sample-interval ≥ 1 s, --events-per-second ≥ 0, --gateway-latency ≥ 0, --fault-at inside the run.");
        }

        return options;
    }

    /// <summary>
    /// A duration: a number with an optional unit <c>ms</c>, <c>s</c>, <c>m</c>/<c>min</c> or <c>h</c>; a bare number counts in
    /// <paramref name="unit"/> (seconds for durations, milliseconds for --gateway-latency).
    /// </summary>
    public static TimeSpan ParseDuration(string text, TimeSpan unit)
    {
        var (number, scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], TimeSpan.FromMilliseconds(1)),
            _ when text.EndsWith("min", StringComparison.Ordinal) => (text[..^3], TimeSpan.FromMinutes(1)),
            _ when text.EndsWith('s') => (text[..^1], TimeSpan.FromSeconds(1)),
            _ when text.EndsWith('m') => (text[..^1], TimeSpan.FromMinutes(1)),
            _ when text.EndsWith('h') => (text[..^1], TimeSpan.FromHours(1)),
            _ => (text, unit),
        };
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value * scale
            : throw new ArgumentException($"'{text}' is not a duration (e.g. 600, 600s, 10m, 150ms).");
    }
}
