using System.Globalization;
using System.Text.RegularExpressions;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>Reads CallbackHub's <c>/metrics</c> as a Prometheus scraper would, and waits for a reading.</summary>
internal static partial class PrometheusText
{
    public static Task<string> MetricsAsync(this CallbackHubInstance hub) =>
        hub.Callbacks.GetStringAsync(new Uri("/metrics", UriKind.Relative));

    /// <summary>The value of the first sample of <paramref name="name"/> whose labels contain <paramref name="label"/>; NaN when absent.</summary>
    public static double Sample(string metrics, string name, string label = "") =>
        metrics.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal))
            .Select(line => double.Parse(SampleValue().Match(line).Groups[1].Value, CultureInfo.InvariantCulture))
            .DefaultIfEmpty(double.NaN)
            .First();

    /// <summary>The sum of every sample of <paramref name="name"/>, whatever its labels; 0 when there is none.</summary>
    public static double Sum(string metrics, string name) =>
        metrics.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal))
            .Sum(line => double.Parse(SampleValue().Match(line).Groups[1].Value, CultureInfo.InvariantCulture));

    /// <summary>Reads until <paramref name="done"/> holds (20 s unless told), failing with the last reading.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Not reached in time; last seen: {value}");
            await Task.Delay(200);
        }
    }

    [GeneratedRegex(@"\}\s+(\S+)")]
    private static partial Regex SampleValue();
}
