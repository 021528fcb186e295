using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace CallbackHub.LoadTest.Sessions;

/// <summary>
/// One CallbackHub process of a sessions run (an instance slot may have several over the run: the original and
/// its replacements), with what was sampled of it: CPU time, memory and its <c>callbackhub_pushes_rejected_total</c>.
/// </summary>
internal sealed partial class HubRecord(int slot, string instanceId, HubProcess hub)
{
    private readonly Lock _gate = new();
    private readonly List<(long At, TimeSpan Cpu)> _cpu = [(hub.StartedAt, TimeSpan.Zero)];
    private Dictionary<string, double> _rejected = new(StringComparer.Ordinal);

    public int Slot { get; } = slot;
    public string InstanceId { get; } = instanceId;
    public HubProcess Hub { get; } = hub;

    /// <summary>Stopwatch timestamp when the tool stopped it (or found it gone), and how.</summary>
    public long? StoppedAt { get; private set; }

    public string? HowStopped { get; private set; }

    public bool Live => StoppedAt is null;

    public double RssMax { get; private set; }
    public double RssLast { get; private set; }
    public double Peak { get; private set; }

    public IReadOnlyList<(long At, TimeSpan Cpu)> CpuSamples
    {
        get
        {
            lock (_gate)
            {
                return [.. _cpu];
            }
        }
    }

    /// <summary>The last scrape of <c>callbackhub_pushes_rejected_total</c>, by reason.</summary>
    public IReadOnlyDictionary<string, double> Rejected
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<string, double>(_rejected, StringComparer.Ordinal);
            }
        }
    }

    public void Stopped(string how)
    {
        lock (_gate)
        {
            StoppedAt ??= Stopwatch.GetTimestamp();
            HowStopped ??= how;
        }
    }

    /// <summary>Reads CPU time and memory from /proc; notes an exit the tool did not cause.</summary>
    public void SampleProcess()
    {
        if (!Live)
        {
            return;
        }

        try
        {
            var cpu = Hub.CpuTime();
            var (rss, peak) = Hub.Memory();
            lock (_gate)
            {
                _cpu.Add((Stopwatch.GetTimestamp(), cpu));
                RssMax = Math.Max(RssMax, rss);
                RssLast = rss;
                Peak = Math.Max(Peak, peak);
            }
        }
        catch (IOException)
        {
            // Gone between the check and the read.
        }

        if (Hub.HasExited)
        {
            Stopped($"exited by itself with code {Hub.ExitCode}");
        }
    }

    public async Task ScrapeMetricsAsync(HttpClient http)
    {
        if (!Live)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var text = await http.GetStringAsync(new Uri(Hub.BaseUri, "/metrics"), timeout.Token);
            var rejected = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (Match match in RejectedLine().Matches(text))
            {
                var reason = match.Groups["reason"].Success ? match.Groups["reason"].Value : "(none)";
                rejected[reason] = rejected.GetValueOrDefault(reason) + double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
            }

            lock (_gate)
            {
                _rejected = rejected;
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            // Killed, stopping or busy: the last scrape stands.
        }
    }

    /// <summary>Average cores over the process's life, and over the last minute sampled (null with under a minute of samples).</summary>
    public (double Life, double? LastMinute) Cores()
    {
        var samples = CpuSamples;
        var last = samples[^1];
        var life = RunClock.Seconds(samples[0].At, last.At);
        var minuteAgo = samples.LastOrDefault(s => RunClock.Seconds(s.At, last.At) >= 60);
        return (life > 0 ? last.Cpu.TotalSeconds / life : 0,
            minuteAgo.At == 0 ? null : (last.Cpu - minuteAgo.Cpu).TotalSeconds / RunClock.Seconds(minuteAgo.At, last.At));
    }

    [GeneratedRegex("""^callbackhub_pushes_rejected_total\{(?:[^}]*reason="(?<reason>[^"]*)")?[^}]*\}\s+(?<value>\S+)""", RegexOptions.Multiline)]
    private static partial Regex RejectedLine();
}

internal static class RunClock
{
    public static double Seconds(long from, long to) => (to - from) / (double)Stopwatch.Frequency;
}
