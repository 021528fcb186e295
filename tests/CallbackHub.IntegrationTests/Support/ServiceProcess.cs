using System.Diagnostics;
using System.Text;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>
/// The built service as an operator runs it: its own process (<c>dotnet CallbackHub.dll</c>), configured only by
/// environment variables, its console output captured, stopped with SIGTERM.
/// </summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServiceProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    /// <summary>Everything it wrote to standard output and standard error, in the order received.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static ServiceProcess Start(IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "CallbackHub.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        // Nothing of the test run's own environment may configure it: only what the test names.
        foreach (var key in start.Environment.Keys.Where(IsServiceSetting).ToList())
        {
            start.Environment.Remove(key);
        }

        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        return new ServiceProcess(Process.Start(start)!);
    }

    /// <summary>Waits for the process to end by itself and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The service did not exit within {timeout}. Its output:\n{Output}");
        }

        return _process.ExitCode;
    }

    /// <summary>What <c>docker stop</c> and Kubernetes do: SIGTERM, then wait for the graceful exit.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        return await WaitForExitAsync(timeout);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static bool IsServiceSetting(string key) =>
        key.StartsWith("ConnectionStrings", StringComparison.OrdinalIgnoreCase) || key.StartsWith("Gateway__", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("Management__", StringComparison.OrdinalIgnoreCase) || key.StartsWith("Agents__", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("Sessions__", StringComparison.OrdinalIgnoreCase) || key.StartsWith("Database__", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("Outbox__", StringComparison.OrdinalIgnoreCase) || key.StartsWith("Callbacks__", StringComparison.OrdinalIgnoreCase)
        || key.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase) || key.StartsWith("Logging__", StringComparison.OrdinalIgnoreCase);
}
