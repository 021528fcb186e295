using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CallbackHub.ContainerTests.Infrastructure;

namespace CallbackHub.ContainerTests;

/// <summary>
/// README's "Run it": `bash deploy/run.sh` as CI runs it (CI=true, no stdin, no terminal), as a separate compose project
/// on free host ports so a developer's demo is never touched, then `bash deploy/run.sh --down`. The images the demo
/// builds (callbackhub/*:dev) and the local base images are kept: a second run only rebuilds what changed.
/// </summary>
[Collection(CheckoutCollection.Name)]
public sealed class RunScriptTests
{
    [Fact]
    public async Task Run_script_brings_the_demo_up_with_events_flowing_and_down_again()
    {
        var project = $"callbackhub-run-test-{Guid.NewGuid():N}"[..30];
        var ports = FreePorts(6);
        var environment = new Dictionary<string, string>
        {
            ["CI"] = "true",
            ["COMPOSE_PROJECT_NAME"] = project,
            ["POSTGRES_PORT"] = ports[0],
            ["RABBITMQ_PORT"] = ports[1],
            ["RABBITMQ_UI_PORT"] = ports[2],
            ["SIMULATOR_PORT"] = ports[3],
            ["CALLBACKHUB_HTTP_PORT"] = ports[4],
            ["CALLBACKHUB_HTTPS_PORT"] = ports[5],
        };
        var hub = $"http://localhost:{ports[4]}";
        CommandResult down, left;
        try
        {
            var run = await Command.RunAsync("bash", ["deploy/run.sh"], environment: environment, timeout: TimeSpan.FromMinutes(8));
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.All(
                [$"{hub}/health/ready", $"{hub}/metrics", $"{hub}/api/agents", $"http://localhost:{ports[2]}",
                 $"http://localhost:{ports[3]}/simulator/pushes", "SELECT", "bash deploy/run.sh --down"],
                expected => Assert.True(run.Output.Contains(expected, StringComparison.Ordinal), $"'{expected}' was not printed:\n{run.Tail()}"));

            using var http = new HttpClient();
            var metrics = await http.GetStringAsync(new Uri($"{hub}/metrics"));
            Assert.True(Counter(metrics, "callbackhub_events_stored_total") > 0, metrics);
            Assert.True(Counter(metrics, "callbackhub_events_published_total") > 0, metrics);
        }
        finally
        {
            down = await Command.RunAsync("bash", ["deploy/run.sh", "--down"], environment: environment, timeout: TimeSpan.FromMinutes(2));
            left = await Command.RunAsync("docker", ["ps", "--all", "--quiet", "--filter", $"label=com.docker.compose.project={project}"]);
        }

        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.True(left.ExitCode == 0 && left.Output.Trim().Length == 0, $"containers of {project} are left: {left}");
    }

    /// <summary>The sum of a counter's series in Prometheus text.</summary>
    private static double Counter(string metrics, string name) =>
        metrics.Split('\n')
            .Where(line => line.StartsWith(name + " ", StringComparison.Ordinal) || line.StartsWith(name + "{", StringComparison.Ordinal))
            .Sum(line => double.Parse(
                (line.Contains('}', StringComparison.Ordinal) ? line[(line.LastIndexOf('}') + 1)..] : line[name.Length..]).Trim().Split(' ')[0],
                CultureInfo.InvariantCulture));

    /// <summary>
    /// Ports nothing listens on now, below Linux's ephemeral range (32768–60999): the ports the other tests running
    /// beside this one get from the system (port 0, outgoing connections) come from that range, so nothing takes these
    /// between this check and compose binding them.
    /// </summary>
    private static string[] FreePorts(int count)
    {
        var ports = new List<string>();
        while (ports.Count < count)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            var listener = new TcpListener(IPAddress.Any, port);
            try
            {
                listener.Start();
                if (!ports.Contains(port.ToString(CultureInfo.InvariantCulture)))
                {
                    ports.Add(port.ToString(CultureInfo.InvariantCulture));
                }
            }
            catch (SocketException)
            {
                // Taken: try another.
            }
            finally
            {
                listener.Stop();
            }
        }

        return [.. ports];
    }
}
