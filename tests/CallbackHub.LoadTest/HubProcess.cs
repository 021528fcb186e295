using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CallbackHub.LoadTest;

/// <summary>
/// One CallbackHub running as its own process (<c>dotnet CallbackHub.dll</c>), so that its CPU time and memory
/// can be read from /proc apart from the load tool's.
/// </summary>
internal sealed class HubProcess : IAsyncDisposable
{
    public const string ApiKey = "loadtest-api-key-0123456789";

    private readonly Process _process;
    private readonly StreamWriter _log;

    private HubProcess(Process process, Uri baseUri, StreamWriter log)
    {
        _process = process;
        BaseUri = baseUri;
        _log = log;
    }

    public Uri BaseUri { get; }
    public int Pid => _process.Id;

    /// <summary>When the process was started and when it first answered (Stopwatch timestamps).</summary>
    public long StartedAt { get; private init; }

    public long ReadyAt { get; private set; }

    /// <summary>What the process is, for messages: CallbackHub or the plain receiver.</summary>
    public string Name { get; private init; } = "CallbackHub";

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static Task<HubProcess> StartAsync(LoadOptions options, int index, Uri gateway, string logPath) =>
        StartAsync(options, gateway, logPath, new HubLaunch($"loadtest-{index}"));

    /// <summary>Starts one CallbackHub and waits until it answers <see cref="HubLaunch.ReadyPath"/>.</summary>
    public static async Task<HubProcess> StartAsync(LoadOptions options, Uri gateway, string logPath, HubLaunch launch)
    {
        var baseUri = new Uri($"http://127.0.0.1:{FreePort()}");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { options.HubDll! },
            WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(options.HubDll!))!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var env = start.Environment;
        env["ASPNETCORE_URLS"] = baseUri.ToString();
        env["ASPNETCORE_ENVIRONMENT"] = "Production";
        env["ConnectionStrings__Postgres"] = options.Postgres;
        env["ConnectionStrings__RabbitMq"] = options.RabbitMq;
        env["Gateway__BaseUrl"] = gateway.ToString().TrimEnd('/');
        env["Gateway__CallbackBaseUrl"] = (launch.CallbackBase ?? baseUri).ToString().TrimEnd('/');
        env["Management__ApiKey"] = ApiKey;
        env["Sessions__InstanceId"] = launch.InstanceId;
        foreach (var (key, value) in launch.Environment ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        foreach (var setting in options.HubEnvironment)
        {
            var (key, value) = (setting[..setting.IndexOf('=', StringComparison.Ordinal)], setting[(setting.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            env[key] = value;
        }

        return await StartProcessAsync(start, baseUri, logPath, launch.ReadyPath, "CallbackHub");
    }

    /// <summary>
    /// Starts the <see cref="PlainReceiver"/>: this tool's own dll again with <see cref="PlainReceiver.Flag"/>, as a
    /// separate process like CallbackHub, and waits until it answers.
    /// </summary>
    public static Task<HubProcess> StartPlainReceiverAsync(LoadOptions options, string logPath)
    {
        var baseUri = new Uri($"http://127.0.0.1:{FreePort()}");
        var dll = typeof(PlainReceiver).Assembly.Location;
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, PlainReceiver.Flag },
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["ASPNETCORE_URLS"] = baseUri.ToString();
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment[PlainReceiver.PostgresVariable] = options.Postgres;
        start.Environment[PlainReceiver.RabbitMqVariable] = options.RabbitMq;
        return StartProcessAsync(start, baseUri, logPath, PlainReceiver.ReadyPath, "The plain receiver");
    }

    private static async Task<HubProcess> StartProcessAsync(ProcessStartInfo start, Uri baseUri, string logPath, string readyPath, string name)
    {
        var startedAt = Stopwatch.GetTimestamp();
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        var log = new StreamWriter(logPath) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var hub = new HubProcess(process, baseUri, log) { StartedAt = startedAt, Name = name };
        try
        {
            await hub.WaitUntilReadyAsync(readyPath);
        }
        catch
        {
            // A start that failed leaves nothing running.
            await hub.KillAsync();
            await hub.DisposeAsync();
            throw;
        }

        hub.ReadyAt = Stopwatch.GetTimestamp();
        return hub;
    }

    /// <summary>Sends a signal by name (<c>STOP</c>, <c>CONT</c>, <c>TERM</c>…) with <c>kill</c>.</summary>
    public async Task SignalAsync(string signal)
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", [$"-{signal}", Pid.ToString(CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
        }
    }

    /// <summary>SIGKILL: the process dies at once, as on a node failure (nothing is flushed or handed back).</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>SIGTERM and wait for the exit; false (and SIGKILL) if it did not exit within <paramref name="timeout"/>.</summary>
    public async Task<bool> TerminateAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return true;
        }

        using (var kill = Process.Start("kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
            return false;
        }
    }

    /// <summary>User + system CPU time of the process so far.</summary>
    public TimeSpan CpuTime()
    {
        // /proc/pid/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
    }

    /// <summary>Resident memory now and its high-water mark, in MiB.</summary>
    public (double Rss, double Peak) Memory()
    {
        double rss = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = Kib(line) / 1024;
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = Kib(line) / 1024;
            }
        }

        return (rss, peak);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM: a graceful stop (the dispatcher flushes, agents are signed out); SIGCONT first, in case it was frozen.
            await SignalAsync("CONT");
            using (var kill = Process.Start("kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(40));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }

        _process.Dispose();
        await _log.DisposeAsync();
    }

    private async Task WaitUntilReadyAsync(string readyPath)
    {
        using var http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(2) };
        http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode}; see its log.");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(readyPath, UriKind.Relative));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"{Name} did not answer within 90 s; see its log.");
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                log.WriteLine(line);
            }
        }
    }

    private static double Kib(string line) =>
        double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// How to start one CallbackHub: its <c>Sessions__InstanceId</c>, the callback base URL the gateway is given (null: the
/// instance's own address), more settings, and the path that must answer 200 before it counts as started.
/// </summary>
internal sealed record HubLaunch(
    string InstanceId, Uri? CallbackBase = null, IReadOnlyDictionary<string, string>? Environment = null, string ReadyPath = "/api/agents");
