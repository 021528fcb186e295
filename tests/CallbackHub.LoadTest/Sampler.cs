using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace CallbackHub.LoadTest;

/// <summary>What was measured at the edges of the measurement window (after warm-up, until the pushing stops).</summary>
internal sealed record Window(
    long StartTimestamp, long EndTimestamp, TimeSpan HubCpu, double MachineBusyCores, TimeSpan ToolCpu, TimeSpan PostgresCpu, TimeSpan RabbitMqCpu,
    IReadOnlyList<(double RssStart, double RssMax, double RssEnd, double Peak)> Memory, long? BacklogAtEnd, long? MaxBacklog);

/// <summary>Reads CallbackHub's CPU time and memory from /proc, and the outbox backlog from PostgreSQL.</summary>
internal sealed class Sampler(IReadOnlyList<HubProcess> hubs)
{
    public async Task<Window> RunAsync(LoadOptions options, BacklogProbe backlogProbe, Task pushing)
    {
        await Task.Delay(options.WarmUp);
        var start = Stopwatch.GetTimestamp();
        var cpuStart = hubs.Select(h => h.CpuTime()).ToArray();
        var machineStart = Machine.CpuTicks();
        var toolStart = Process.GetCurrentProcess().TotalProcessorTime;
        var serversStart = Machine.ServerCpu();
        var rssStart = hubs.Select(h => h.Memory().Rss).ToArray();
        var rssMax = rssStart.ToArray();
        long? maxBacklog = null;
        var end = start + (long)((options.Duration - options.WarmUp).TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < end && !pushing.IsCompleted)
        {
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(2, Math.Max(0.01, RunCounters.Milliseconds(Stopwatch.GetTimestamp(), end) / 1000))));
            for (var i = 0; i < hubs.Count; i++)
            {
                rssMax[i] = Math.Max(rssMax[i], hubs[i].Memory().Rss);
            }

            maxBacklog = Max(maxBacklog, await backlogProbe.ReadAsync());
        }

        var stop = Stopwatch.GetTimestamp();
        var cpu = hubs.Select((h, i) => h.CpuTime() - cpuStart[i]).Aggregate(TimeSpan.Zero, (a, b) => a + b);
        var machine = Machine.CpuTicks();
        var tool = Process.GetCurrentProcess().TotalProcessorTime - toolStart;
        var servers = Machine.ServerCpu();
        var seconds = RunCounters.Milliseconds(start, stop) / 1000;
        var busyCores = (machine.Busy - machineStart.Busy) / 100.0 / seconds;
        var memory = hubs.Select((h, i) => (rssStart[i], rssMax[i], h.Memory().Rss, h.Memory().Peak)).ToList();
        var backlog = await backlogProbe.ReadAsync();
        return new Window(start, stop, cpu, busyCores, tool, servers.Postgres - serversStart.Postgres, servers.RabbitMq - serversStart.RabbitMq, memory, backlog, Max(maxBacklog, backlog));
    }

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);
}

/// <summary>
/// The outbox backlog: events stored but not yet published. CallbackHub's schema decides how it is read, checked once in
/// <c>information_schema</c> (after CallbackHub applied its migrations): <c>agent_streams.published_sequence</c>
/// (the rewritten outbox) gives <c>sum(last_sequence - published_sequence)</c>; else <c>agent_events.published_at</c>
/// gives the rows still <c>NULL</c>; neither (the plain receiver has no outbox) gives null.
/// </summary>
internal sealed class BacklogProbe(string postgres)
{
    private const string StreamsSql = "SELECT coalesce(sum(last_sequence - published_sequence), 0)::bigint FROM agent_streams";
    private const string RowsSql = "SELECT count(*) FROM agent_events WHERE published_at IS NULL";

    private bool _checked;
    private string? _sql;

    /// <summary>How the backlog is read: <c>published_sequence</c>, <c>published_at</c>, or none.</summary>
    public string Source => _sql switch { StreamsSql => "agent_streams.published_sequence", RowsSql => "agent_events.published_at", _ => "none" };

    public async Task<long?> ReadAsync()
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        if (!_checked)
        {
            await using var check = new NpgsqlCommand("""
                SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'agent_streams' AND column_name = 'published_sequence'),
                       EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'agent_events' AND column_name = 'published_at')
                """, connection);
            await using (var reader = await check.ExecuteReaderAsync())
            {
                await reader.ReadAsync();
                _sql = reader.GetBoolean(0) ? StreamsSql : reader.GetBoolean(1) ? RowsSql : null;
            }

            _checked = true;
        }

        if (_sql is null)
        {
            return null;
        }

        await using var command = new NpgsqlCommand(_sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
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
    /// (the beam.smp running RabbitMQ, whatever its node name), so the report shows where the machine's two cores went.
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
                    && File.ReadAllText($"{dir}/cmdline").Contains("\0-s\0rabbit\0boot\0", StringComparison.Ordinal))
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
