using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using CallbackHub.GatewaySimulator;
using CallbackHub.GatewaySimulator.Control;
using CallbackHub.GatewaySimulator.Play;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CallbackHub.LoadTest.Sessions;

/// <summary>One ownership sample: <c>GET /api/agents</c> on one live instance, counted by <c>ownerInstance</c> and <c>state</c>.</summary>
internal sealed record OwnershipSample(
    double At, string From, IReadOnlyList<string> LiveInstances, IReadOnlyDictionary<string, int> Owners, IReadOnlyDictionary<string, int> States,
    int Sessions, double FetchSeconds, int GatewaySignedIn, string? Error);

/// <summary>
/// <c>--mode sessions</c>: N roster agents kept signed in by K CallbackHub processes against the gateway simulator
/// (answer latency, heartbeat-token adoption as asked), with the agent-day player pushing through one balanced
/// callback address, optionally a SIGKILL or a rolling restart at mid-run; see README.md.
/// </summary>
internal sealed class SessionsRun : IDisposable
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private readonly LoadOptions _options;
    private readonly string _runId;
    private readonly string _logDirectory;
    private readonly Lock _gate = new();
    private readonly List<HubRecord> _hubs = [];
    private readonly List<OwnershipSample> _samples = [];
    private readonly List<(long At, string What)> _timeline = [];
    private readonly HttpClient _api = new() { Timeout = TimeSpan.FromSeconds(90) };
    private readonly GatewayObserver _observer;
    private IReadOnlyDictionary<string, string> _hubEnvironment = new Dictionary<string, string>();
    private CallbackBalancer? _balancer;
    private Uri? _gateway;
    private long _t0;

    private SessionsRun(LoadOptions options, string runId)
    {
        _options = options;
        _runId = runId;
        _logDirectory = Path.Combine(Path.GetTempPath(), $"callbackhub-loadtest-{runId}");
        _observer = new GatewayObserver(options.Agents);
        _api.DefaultRequestHeaders.Add("X-Api-Key", HubProcess.ApiKey);
    }

    /// <summary>The name of the simulator's push HttpClient (PushSender.ClientName, internal to the simulator).</summary>
    private const string SimulatorPushClient = "gateway-push";

    private TimeSpan FaultAt => _options.FaultAt ?? _options.Duration / 2;

    public static async Task RunAsync(LoadOptions options, string runId)
    {
        using var run = new SessionsRun(options, runId);
        await run.RunAsync();
    }

    public void Dispose() => _api.Dispose();

    private async Task RunAsync()
    {
        Directory.CreateDirectory(_logDirectory);
        var loadBefore = Machine.LoadAverage();
        Console.Error.WriteLine($"[{_runId}] sessions mode, load average {loadBefore}; logs in {_logDirectory}");
        await ResetDatabaseAsync(_options.Postgres);

        var rosterPath = Path.Combine(_logDirectory, "roster.json");
        await WriteRosterAsync(rosterPath, _options.FirstAgentId, _options.Agents);
        var rosterSource = _options.Roster;
        if (rosterSource == RosterSource.Auto)
        {
            rosterSource = await ProbeRosterFileAsync() ? RosterSource.File : RosterSource.Environment;
            await ResetDatabaseAsync(_options.Postgres);
        }

        _hubEnvironment = HubEnvironment(rosterSource, rosterPath);

        var simulatorUri = new Uri($"http://127.0.0.1:{HubProcess.FreePort()}");
        await using var simulatorApp = SimulatorApp.Build([], builder =>
        {
            builder.WebHost.UseUrls(simulatorUri.ToString());
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddSingleton<IStartupFilter>(new GatewayObserverStartupFilter(_observer));
            builder.Services.AddHttpClient(SimulatorPushClient).AddHttpMessageHandler(() => new PushCountingHandler(_observer));
        });
        await simulatorApp.StartAsync();
        _gateway = simulatorUri;
        var simulator = simulatorApp.Services.GetRequiredService<GatewaySimulatorState>();
        using (var http = new HttpClient { BaseAddress = simulatorUri })
        {
            // The documented control API, as any load test would use it.
            var latency = _options.GatewayLatency.ToString("c", CultureInfo.InvariantCulture);
            using var patch = await http.PatchAsJsonAsync("/simulator/switches", new { answerLatency = latency, heartbeatServiceToken = _options.HeartbeatTokens });
            patch.EnsureSuccessStatusCode();
            Console.Error.WriteLine($"Gateway simulator at {simulatorUri}: {await patch.Content.ReadAsStringAsync()}");
        }

        _balancer = await CallbackBalancer.StartAsync();
        var machineStart = Machine.CpuTicks();
        var toolStart = Process.GetCurrentProcess().TotalProcessorTime;
        var serversStart = Machine.ServerCpu();
        using var sampling = new CancellationTokenSource();
        Task? fault = null;
        try
        {
            if (_options.EventsPerSecond > 0)
            {
                // Agents not signed in yet are skipped by the player; they join as they sign in.
                await simulator.StartPlayAsync(new PlaySettings(_options.EventsPerSecond, _options.Agents, _options.FirstAgentId, Seed: _options.Seed));
            }

            _t0 = Stopwatch.GetTimestamp();
            var sampler = Task.Run(() => SampleLoopAsync(simulator, sampling.Token));
            for (var slot = 0; slot < _options.Instances; slot++)
            {
                // One after the other: the first applies the migrations.
                await StartInstanceAsync(slot, generation: 1);
            }

            if (_options.Fault != Fault.None)
            {
                fault = Task.Run(FaultAsync);
            }

            await DelayUntilAsync(_options.Duration, CancellationToken.None);
            if (fault is { IsCompleted: false })
            {
                Console.Error.WriteLine("The fault is still being played; waiting for it to finish before the last sample…");
                await fault;
            }

            if (_options.EventsPerSecond > 0)
            {
                await simulator.StopPlayAsync();
            }

            await sampling.CancelAsync();
            await sampler;
            await SampleAsync(simulator);
            var end = Stopwatch.GetTimestamp();
            var machine = Machine.CpuTicks();
            var servers = Machine.ServerCpu();
            var seconds = RunClock.Seconds(_t0, end);
            var usage = new MachineUsage(
                (machine.Busy - machineStart.Busy) / 100.0 / seconds,
                (Process.GetCurrentProcess().TotalProcessorTime - toolStart).TotalSeconds / seconds,
                (servers.Postgres - serversStart.Postgres).TotalSeconds / seconds,
                loadBefore,
                Machine.LoadAverage());
            if (fault is not null)
            {
                await fault;
            }

            SessionsReport.Print(new SessionsReport.Input(
                _options, _runId, rosterSource, _t0, end, FaultAt, Snapshot(_hubs), Snapshot(_samples), Snapshot(_timeline), _observer,
                simulator.GetHeartbeats(details: true), simulator.GetAgents(), simulator.PlayStatus, _balancer.Counts, usage));
            Console.Error.WriteLine($"CallbackHub logs: {_logDirectory}");
        }
        finally
        {
            await sampling.CancelAsync();
            foreach (var record in Snapshot(_hubs))
            {
                // The measurement is over: no graceful sign-out of thousands of agents through a slow gateway.
                await record.Hub.KillAsync();
                await record.Hub.DisposeAsync();
            }

            await _balancer.DisposeAsync();
            await simulatorApp.StopAsync();
        }
    }

    private Dictionary<string, string> HubEnvironment(RosterSource roster, string rosterPath)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (roster == RosterSource.File)
        {
            env["Roster__File"] = rosterPath;
        }
        else
        {
            // The configuration binder is quadratic in the number of array items: fine for a few hundred, not for 10,000.
            if (_options.Agents > 2000)
            {
                throw new InvalidOperationException(
                    $"CallbackHub did not take Roster__File, and {_options.Agents} agents are too many for Agents__N__… variables (at most 2000).");
            }

            for (var i = 0; i < _options.Agents; i++)
            {
                var id = _options.FirstAgentId + i;
                env[$"Agents__{i}__AgentId"] = id.ToString(CultureInfo.InvariantCulture);
                env[$"Agents__{i}__Password"] = Password;
                env[$"Agents__{i}__PhoneNumber"] = PhoneNumber(id);
            }
        }

        if (_options.GatewayMaxConcurrentCalls is { } calls)
        {
            env["Gateway__MaxConcurrentCalls"] = calls.ToString(CultureInfo.InvariantCulture);
        }

        if (_options.Fault == Fault.Rolling)
        {
            // SIGTERM hands the agents over instead of signing them out.
            env["Sessions__SignOutOnShutdown"] = "false";
        }

        return env;
    }

    private const string Password = "loadtest";

    private static string PhoneNumber(int agentId) => "7" + agentId.ToString(CultureInfo.InvariantCulture);

    /// <summary>The roster file: a JSON array of <c>{"agentId","password","phoneNumber"}</c>, the management API's sign-in field names.</summary>
    private static async Task WriteRosterAsync(string path, int firstAgentId, int agents)
    {
        await using var file = File.Create(path);
        await using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = false });
        json.WriteStartArray();
        for (var id = firstAgentId; id < firstAgentId + agents; id++)
        {
            json.WriteStartObject();
            json.WriteNumber("agentId", id);
            json.WriteString("password", Password);
            json.WriteString("phoneNumber", PhoneNumber(id));
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    /// <summary>
    /// Whether this CallbackHub takes <c>Roster__File</c>: one instance against a throw-away simulator, given a file of one
    /// agent, must sign that agent in within 30 s. An instance that does not start at all is an error, not a fallback.
    /// </summary>
    private async Task<bool> ProbeRosterFileAsync()
    {
        var path = Path.Combine(_logDirectory, "roster-probe.json");
        await WriteRosterAsync(path, _options.FirstAgentId, 1);
        var simulatorUri = new Uri($"http://127.0.0.1:{HubProcess.FreePort()}");
        await using var probeSimulator = SimulatorApp.Build([], builder =>
        {
            builder.WebHost.UseUrls(simulatorUri.ToString());
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        });
        await probeSimulator.StartAsync();
        var state = probeSimulator.Services.GetRequiredService<GatewaySimulatorState>();
        var logPath = Path.Combine(_logDirectory, "callbackhub-roster-probe.log");
        HubProcess? hub = null;
        try
        {
            try
            {
                hub = await HubProcess.StartAsync(_options, simulatorUri, logPath,
                    new HubLaunch("loadtest-probe", Environment: new Dictionary<string, string> { ["Roster__File"] = path }, ReadyPath: "/health/live"));
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                throw new InvalidOperationException($"Roster__File probe: {e.Message}\n{Tail(logPath)}", e);
            }

            var deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < deadline && !hub.HasExited)
            {
                if (state.GetRequests(_options.FirstAgentId.ToString(CultureInfo.InvariantCulture)).Any(r => r.Method == "PUT"))
                {
                    Console.Error.WriteLine("Roster__File probe: CallbackHub signed the file's agent in; the roster goes in a file.");
                    return true;
                }

                await Task.Delay(250);
            }

            if (hub.HasExited)
            {
                throw new InvalidOperationException($"Roster__File probe: CallbackHub exited with code {hub.ExitCode}.\n{Tail(logPath)}");
            }

            Console.Error.WriteLine("Roster__File probe: no sign-in within 30 s, so this CallbackHub does not read Roster__File; falling back to Agents__N__… variables.");
            return false;
        }
        finally
        {
            if (hub is not null)
            {
                await hub.KillAsync();
                await hub.DisposeAsync();
            }

            await probeSimulator.StopAsync();
        }
    }

    private static string Tail(string path) =>
        File.Exists(path) ? string.Join('\n', File.ReadLines(path).TakeLast(15)) : "(no log)";

    private async Task<HubRecord?> StartInstanceAsync(int slot, int generation)
    {
        var instanceId = generation == 1 ? $"loadtest-{slot}" : $"loadtest-{slot}-r{generation}";
        Note(Stopwatch.GetTimestamp(), $"start {instanceId}");
        try
        {
            var hub = await HubProcess.StartAsync(_options, _gateway!, Path.Combine(_logDirectory, $"callbackhub-{instanceId}.log"),
                new HubLaunch(instanceId, _balancer!.BaseUri, _hubEnvironment, ReadyPath: "/health/live"));
            var record = new HubRecord(slot, instanceId, hub);
            lock (_gate)
            {
                _hubs.Add(record);
            }

            _balancer.Add(hub.BaseUri);
            Note(hub.ReadyAt, $"{instanceId} answering (pid {hub.Pid})");
            return record;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            Note(Stopwatch.GetTimestamp(), $"{instanceId} failed to start: {e.Message}");
            if (generation == 1 && slot == 0)
            {
                throw;
            }

            return null;
        }
    }

    private async Task FaultAsync()
    {
        await DelayUntilAsync(FaultAt, CancellationToken.None);
        var slots = _options.Fault == Fault.SigKill ? [0] : Enumerable.Range(0, _options.Instances).ToArray();
        foreach (var slot in slots)
        {
            var victim = Snapshot(_hubs).LastOrDefault(h => h.Slot == slot && h.Live);
            if (victim is null)
            {
                Note(Stopwatch.GetTimestamp(), $"slot {slot}: no live instance to stop");
                continue;
            }

            victim.SampleProcess();
            await victim.ScrapeMetricsAsync(_api);
            var generation = Snapshot(_hubs).Count(h => h.Slot == slot) + 1;
            if (_options.Fault == Fault.SigKill)
            {
                Note(Stopwatch.GetTimestamp(), $"SIGKILL {victim.InstanceId}");
                await victim.Hub.KillAsync();
                victim.Stopped("SIGKILL");
                _balancer!.Remove(victim.Hub.BaseUri);
                await Task.Delay(_options.RestartDelay);
            }
            else
            {
                // Out of the balancer first, as a pod leaves its Service's endpoints before it gets SIGTERM.
                _balancer!.Remove(victim.Hub.BaseUri);
                var term = Stopwatch.GetTimestamp();
                Note(term, $"SIGTERM {victim.InstanceId}");
                var exited = await victim.Hub.TerminateAsync(TimeSpan.FromSeconds(120));
                var took = RunClock.Seconds(term, Stopwatch.GetTimestamp());
                victim.Stopped(exited ? $"SIGTERM, exited in {took:F1} s (code {victim.Hub.ExitCode})" : "SIGTERM, still running after 120 s: SIGKILL");
                Note(Stopwatch.GetTimestamp(), $"{victim.InstanceId} {victim.HowStopped}");
            }

            if (await StartInstanceAsync(slot, generation) is null && _options.Fault == Fault.Rolling)
            {
                Note(Stopwatch.GetTimestamp(), "rolling restart stopped: the replacement did not start");
                return;
            }
        }
    }

    private async Task SampleLoopAsync(GatewaySimulatorState simulator, CancellationToken cancellationToken)
    {
        for (var k = 1; ; k++)
        {
            try
            {
                await DelayUntilAsync(k * _options.SampleInterval, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (k * _options.SampleInterval >= _options.Duration)
            {
                return; // the run takes its last sample itself
            }

            if (RunClock.Seconds(_t0, Stopwatch.GetTimestamp()) > (k + 1) * _options.SampleInterval.TotalSeconds)
            {
                continue; // the previous sample overran this slot
            }

            await SampleAsync(simulator);
        }
    }

    private async Task SampleAsync(GatewaySimulatorState simulator)
    {
        var at = RunClock.Seconds(_t0, Stopwatch.GetTimestamp());
        var hubs = Snapshot(_hubs);
        foreach (var hub in hubs)
        {
            hub.SampleProcess();
        }

        await Task.WhenAll(hubs.Select(h => h.ScrapeMetricsAsync(_api)));
        var live = hubs.Where(h => h.Live).ToList();
        var heartbeats = simulator.GetHeartbeats();
        // Any live instance will do: the first started that is still up, else the next (it may die as we ask).
        OwnershipSample? sample = null;
        foreach (var from in live)
        {
            sample = await FetchOwnershipAsync(from, at, live, heartbeats.SignedIn);
            if (sample.Error is null)
            {
                break;
            }
        }

        sample ??= new OwnershipSample(at, "-", [], new Dictionary<string, int>(), new Dictionary<string, int>(), 0, 0, heartbeats.SignedIn, "no live instance");
        lock (_gate)
        {
            _samples.Add(sample);
        }

        var owned = string.Join(", ", sample.Owners.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key} {o.Value}"));
        var cpu = string.Join(", ", live.Select(h => $"{h.InstanceId} {h.Cores().Life:F2} cores {h.RssLast:F0} MiB"));
        Console.Error.WriteLine(
            $"+{at,4:F0} s  gateway: {heartbeats.SignedIn}/{_options.Agents} signed in, max gap {heartbeats.MaxGapSeconds ?? 0:F1} s, open {heartbeats.MaxOpenGapSeconds ?? 0:F1} s, "
            + $"timeouts {heartbeats.SignedOutByTimeout}, extra sign-ins {_observer.ExtraSignIns().Count}, 401s {_observer.Pushes().GetValueOrDefault("401")} | "
            + $"owners ({sample.From}, {sample.FetchSeconds:F1} s): {(sample.Error ?? owned)} | {cpu}");
    }

    private async Task<OwnershipSample> FetchOwnershipAsync(HubRecord from, double at, List<HubRecord> live, int gatewaySignedIn)
    {
        var fetch = Stopwatch.GetTimestamp();
        try
        {
            using var response = await _api.GetAsync(new Uri(from.Hub.BaseUri, "/api/agents"), HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await using var stream = await response.Content.ReadAsStreamAsync();
            using var document = await JsonDocument.ParseAsync(stream);
            var owners = new Dictionary<string, int>(StringComparer.Ordinal);
            var states = new Dictionary<string, int>(StringComparer.Ordinal);
            var sessions = 0;
            foreach (var session in document.RootElement.EnumerateArray())
            {
                sessions++;
                var owner = session.TryGetProperty("ownerInstance", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString()! : "(none)";
                var state = session.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "?";
                owners[owner] = owners.GetValueOrDefault(owner) + 1;
                states[state] = states.GetValueOrDefault(state) + 1;
            }

            return new OwnershipSample(at, from.InstanceId, [.. live.Select(h => h.InstanceId)], owners, states, sessions,
                RunClock.Seconds(fetch, Stopwatch.GetTimestamp()), gatewaySignedIn, null);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            return new OwnershipSample(at, from.InstanceId, [.. live.Select(h => h.InstanceId)], new Dictionary<string, int>(), new Dictionary<string, int>(), 0,
                RunClock.Seconds(fetch, Stopwatch.GetTimestamp()), gatewaySignedIn, e.GetType().Name + ": " + e.Message);
        }
    }

    private async Task DelayUntilAsync(TimeSpan sinceStart, CancellationToken cancellationToken)
    {
        var wait = sinceStart - TimeSpan.FromSeconds(RunClock.Seconds(_t0, Stopwatch.GetTimestamp()));
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }
    }

    private void Note(long at, string what)
    {
        lock (_gate)
        {
            _timeline.Add((at, what));
        }

        Console.Error.WriteLine($"+{RunClock.Seconds(_t0, at),4:F0} s  {what}");
    }

    private List<T> Snapshot<T>(List<T> list)
    {
        lock (_gate)
        {
            return [.. list];
        }
    }

    /// <summary>
    /// Drops and recreates the database (its name must contain "loadtest"); a user without CREATEDB (e.g. the owner of a
    /// database made for it by an administrator) gets its public schema dropped and recreated instead.
    /// </summary>
    internal static async Task ResetDatabaseAsync(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var database = builder.Database ?? "";
        if (!database.Contains("loadtest", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"The database name must contain 'loadtest' (it is dropped and recreated); got '{database}'.");
        }

        var server = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false };
        await using (var connection = new NpgsqlConnection(server.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user", connection);
            if (await command.ExecuteScalarAsync() is true)
            {
                command.CommandText = $"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)";
                // FORCE may not end an autovacuum worker (it runs as no role: 42501 without pg_signal_backend), which a
                // large run before sets off: it finishes within seconds.
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        await command.ExecuteNonQueryAsync();
                        break;
                    }
                    catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.ObjectInUse && attempt < 60)
                    {
                        await Task.Delay(TimeSpan.FromSeconds(1));
                    }
                }

                command.CommandText = $"CREATE DATABASE \"{database}\"";
                await command.ExecuteNonQueryAsync();
                // FORCE ended this process's pooled connections to it too: they would fail their next command.
                NpgsqlConnection.ClearAllPools();
                return;
            }
        }

        // Without CREATEDB (the owner of a database an administrator made for the tool): empty it instead.
        builder.Pooling = false;
        await using (var connection = new NpgsqlConnection(builder.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public", connection);
            await command.ExecuteNonQueryAsync();
        }

        Console.Error.WriteLine($"Database {database}: the user may not create databases, so its public schema was dropped and recreated.");
    }
}

/// <summary>Where the machine's cores went over the run, and the load average around it.</summary>
internal sealed record MachineUsage(double BusyCores, double ToolCores, double PostgresCores, string LoadBefore, string LoadAfter);
