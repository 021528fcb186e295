using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace CallbackHub.LoadTest;

/// <summary>What was measured at the edges of the measurement window (after warm-up, until the pushing stops).</summary>
internal sealed record Window(
    long StartTimestamp, long EndTimestamp, TimeSpan HubCpu, double MachineBusyCores, TimeSpan ToolCpu, TimeSpan PostgresCpu, TimeSpan RabbitMqCpu,
    IReadOnlyList<(double RssStart, double RssMax, double RssEnd, double Peak)> Memory, long BacklogAtEnd, long MaxBacklog);

/// <summary>Reads CallbackHub's CPU time and memory from /proc, and the outbox backlog from PostgreSQL.</summary>
internal sealed class Sampler(IReadOnlyList<HubProcess> hubs)
{
    public async Task<Window> RunAsync(LoadOptions options, string postgres, Task pushing)
    {
        await Task.Delay(options.WarmUp);
        var start = Stopwatch.GetTimestamp();
        var cpuStart = hubs.Select(h => h.CpuTime()).ToArray();
        var machineStart = Machine.CpuTicks();
        var toolStart = Process.GetCurrentProcess().TotalProcessorTime;
        var serversStart = Machine.ServerCpu();
        var rssStart = hubs.Select(h => h.Memory().Rss).ToArray();
        var rssMax = rssStart.ToArray();
        long maxBacklog = 0;
        var end = start + (long)((options.Duration - options.WarmUp).TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < end && !pushing.IsCompleted)
        {
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(2, Math.Max(0.01, RunCounters.Milliseconds(Stopwatch.GetTimestamp(), end) / 1000))));
            for (var i = 0; i < hubs.Count; i++)
            {
                rssMax[i] = Math.Max(rssMax[i], hubs[i].Memory().Rss);
            }

            maxBacklog = Math.Max(maxBacklog, await BacklogAsync(postgres));
        }

        var stop = Stopwatch.GetTimestamp();
        var cpu = hubs.Select((h, i) => h.CpuTime() - cpuStart[i]).Aggregate(TimeSpan.Zero, (a, b) => a + b);
        var machine = Machine.CpuTicks();
        var tool = Process.GetCurrentProcess().TotalProcessorTime - toolStart;
        var servers = Machine.ServerCpu();
        var seconds = RunCounters.Milliseconds(start, stop) / 1000;
        var busyCores = (machine.Busy - machineStart.Busy) / 100.0 / seconds;
        var memory = hubs.Select((h, i) => (rssStart[i], rssMax[i], h.Memory().Rss, h.Memory().Peak)).ToList();
        var backlog = await BacklogAsync(postgres);
        return new Window(start, stop, cpu, busyCores, tool, servers.Postgres - serversStart.Postgres, servers.RabbitMq - serversStart.RabbitMq, memory, backlog, Math.Max(maxBacklog, backlog));
    }

    public static async Task<long> BacklogAsync(string postgres)
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM agent_events WHERE published_at IS NULL", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}

internal static class Machine
{
    /// <summary>CPU time (user + system) of a process, zero if it is gone.</summary>
    public static TimeSpan ProcessCpu(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return TimeSpan.FromSeconds((long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0);
        }
        catch (IOException)
        {
            return TimeSpan.Zero;
        }
    }

    /// <summary>
    /// CPU time so far of the host's PostgreSQL 15 cluster (postmaster and its backends) and RabbitMQ node
    /// (beam.smp of rabbit@localhost), so the report shows where the machine's two cores went.
    /// Backends that exited during the window are missed, which is fine for pooled connections.
    /// </summary>
    public static (TimeSpan Postgres, TimeSpan RabbitMq) ServerCpu()
    {
        var postgres = TimeSpan.Zero;
        var rabbit = TimeSpan.Zero;
        var postmaster = File.Exists(PostmasterPid) ? int.Parse(File.ReadLines(PostmasterPid).First(), CultureInfo.InvariantCulture) : -1;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var status = File.ReadAllText($"{dir}/status");
                if (pid == postmaster || status.Contains($"\nPPid:\t{postmaster}\n", StringComparison.Ordinal))
                {
                    postgres += ProcessCpu(pid);
                }
                else if (status.StartsWith("Name:\tbeam.smp", StringComparison.Ordinal)
                    && File.ReadAllText($"{dir}/environ").Contains("RABBITMQ_NODENAME=rabbit@localhost", StringComparison.Ordinal))
                {
                    rabbit += ProcessCpu(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked.
            }
        }

        return (postgres, rabbit);
    }

    private const string PostmasterPid = "/var/lib/postgresql/15/main/postmaster.pid";

    public static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    /// <summary>Busy (user+nice+system+irq+softirq+steal) clock ticks of all cores, from /proc/stat.</summary>
    public static (long Busy, long Total) CpuTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var idle = fields[3] + fields[4];
        var total = fields.Take(8).Sum();
        return (total - idle, total);
    }
}
