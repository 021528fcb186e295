using System.Diagnostics;
using System.Text;

namespace CallbackHub.ContainerTests.Infrastructure;

/// <summary>What a command printed (stdout and stderr, interleaved as they came) and how it ended.</summary>
internal sealed record CommandResult(string CommandLine, int ExitCode, string Output, TimeSpan Elapsed)
{
    /// <summary>The last lines of the output, for assertion messages.</summary>
    public string Tail(int lines = 60) =>
        string.Join('\n', Output.Split('\n').TakeLast(lines));

    public override string ToString() =>
        $"{CommandLine} exited with {ExitCode} after {Elapsed.TotalSeconds:0}s; its last output:\n{Tail()}";
}

/// <summary>
/// Runs a command line the way CI does: no stdin, no terminal, the test run's environment plus what is given, minus
/// the MSBuild variables `dotnet test` exports of its own build (a nested `dotnet publish` must find its own).
/// </summary>
internal static class Command
{
    public static async Task<CommandResult> RunAsync(
        string file, IEnumerable<string> arguments, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Repository.Root,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var variable in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(variable);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var commandLine = $"{file} {string.Join(' ', start.ArgumentList)}";
        var output = new StringBuilder();
        void Append(object sender, DataReceivedEventArgs line)
        {
            if (line.Data is not null)
            {
                lock (output)
                {
                    output.Append(line.Data).Append('\n');
                }
            }
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += Append;
        process.ErrorDataReceived += Append;
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(10));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (output)
            {
                output.Append($"(killed: no exit within {timeout?.TotalSeconds ?? 600:0}s)\n");
            }
        }

        // WaitForExitAsync also waits for the redirected streams to end.
        lock (output)
        {
            return new CommandResult(commandLine, process.ExitCode, output.ToString(), stopwatch.Elapsed);
        }
    }

    /// <summary>Runs the command and throws with its output when it fails.</summary>
    public static async Task<CommandResult> SucceedAsync(
        string file, IEnumerable<string> arguments, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var result = await RunAsync(file, arguments, workingDirectory, environment, timeout);
        return result.ExitCode == 0 ? result : throw new InvalidOperationException(result.ToString());
    }
}
