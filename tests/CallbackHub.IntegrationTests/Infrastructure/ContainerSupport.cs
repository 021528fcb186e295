using System.Net;
using System.Net.Sockets;
using DotNet.Testcontainers.Containers;

namespace CallbackHub.IntegrationTests.Infrastructure;

/// <summary>Small pieces the container fixtures share.</summary>
internal static class ContainerSupport
{
    /// <summary>
    /// A host port that is free now. Fixtures bind their container to it explicitly because Docker picks a new
    /// random port when a stopped container starts again, and tests stop and start containers.
    /// </summary>
    public static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// Builds and starts a container, turning any failure (Docker not running, image missing...) into one message
    /// that says what to do. Tests fail then; they are never skipped.
    /// </summary>
    public static async Task<TContainer> StartAsync<TContainer>(
        Func<TContainer> build, string what, string image, string imageVariable)
        where TContainer : IContainer
    {
        TContainer? container = default;
        try
        {
            container = build();
            await container.StartAsync();
            return container;
        }
        catch (Exception exception)
        {
            if (container is not null)
            {
                await container.DisposeAsync();
            }
            throw new InvalidOperationException(
                $"Could not start the {what} test container from image '{image}'. The integration tests need a running "
                + "Docker engine and that image: run them with `bash deploy/test.sh`, which starts dockerd and builds local "
                + $"images when no registry answers, or set {imageVariable} to an image you have (see DEVELOPERS.md). "
                + $"Cause: {exception.Message}",
                exception);
        }
    }

    /// <summary>Polls <paramref name="probe"/> until it succeeds; a probe that throws counts as "not yet".</summary>
    public static async Task WaitUntilAsync(string what, Func<CancellationToken, Task> probe, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            try
            {
                await probe(deadline.Token);
                return;
            }
            catch (Exception) when (!deadline.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), CancellationToken.None);
            }
            catch (Exception exception)
            {
                throw new TimeoutException($"{what} did not become ready within {timeout.TotalSeconds:0} s.", exception);
            }
        }
    }
}
