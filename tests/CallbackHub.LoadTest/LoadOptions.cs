using System.Globalization;

namespace CallbackHub.LoadTest;

/// <summary>Command-line options: <c>--name value</c> pairs; see README.md for the list.</summary>
internal sealed class LoadOptions
{
    public int Agents { get; private init; } = 200;
    public int FirstAgentId { get; private init; } = 1001;

    /// <summary>Offered events/s (open loop, scheduled); 0 = closed loop, every agent pushes as fast as it is answered.</summary>
    public double Rate { get; private init; }

    public TimeSpan Duration { get; private init; } = TimeSpan.FromSeconds(60);
    public TimeSpan WarmUp { get; private init; } = TimeSpan.FromSeconds(10);
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
        TimeSpan Seconds(string name, TimeSpan fallback) =>
            Get(name) is { } v ? TimeSpan.FromSeconds(double.Parse(v, CultureInfo.InvariantCulture)) : fallback;

        var defaults = new LoadOptions();
        var perPush = (Get("events-per-push") ?? "1-5").Split('-');
        var options = new LoadOptions
        {
            Agents = Int("agents", defaults.Agents),
            FirstAgentId = Int("first-agent", defaults.FirstAgentId),
            Rate = Get("rate") is { } rate && rate != "max" ? double.Parse(rate, CultureInfo.InvariantCulture) : 0,
            Duration = Seconds("duration", defaults.Duration),
            WarmUp = Seconds("warmup", defaults.WarmUp),
            MinEventsPerPush = int.Parse(perPush[0], CultureInfo.InvariantCulture),
            MaxEventsPerPush = int.Parse(perPush[^1], CultureInfo.InvariantCulture),
            Concurrency = Int("concurrency", defaults.Concurrency),
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

        if (options.HubDll is null || !File.Exists(options.HubDll))
        {
            throw new ArgumentException("--hub-dll must name the published CallbackHub.dll (dotnet publish src/CallbackHub -c Release -o <dir>).");
        }

        if (options.Agents < 1 || options.Instances < 1 || options.MinEventsPerPush < 1
            || options.MaxEventsPerPush < options.MinEventsPerPush || options.WarmUp >= options.Duration)
        {
            throw new ArgumentException("--agents and --instances must be ≥ 1, --events-per-push like 1-5, --warmup shorter than --duration.");
        }

        return options;
    }
}
