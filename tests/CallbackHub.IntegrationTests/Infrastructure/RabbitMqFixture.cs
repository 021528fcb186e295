using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using RabbitMQ.Client;
using Testcontainers.RabbitMq;

namespace CallbackHub.IntegrationTests.Infrastructure;

/// <summary>
/// One RabbitMQ container for the whole test run; each test gets its own virtual host from
/// <see cref="CreateVirtualHostAsync"/>. Host ports are fixed when the fixture starts so that
/// <see cref="StopAsync"/> + <see cref="StartAsync"/> keep every URI valid.
/// </summary>
public sealed class RabbitMqFixture : IAsyncLifetime, IDisposable
{
    private const ushort ManagementContainerPort = 15672;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    private readonly HttpClient _management;
    private RabbitMqContainer? _container;

    public RabbitMqFixture()
    {
        _management = new HttpClient { BaseAddress = new Uri($"http://{Host}:{ManagementPort}/api/") };
        _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Username}:{Password}")));
    }

    public string Host { get; } = "127.0.0.1";

    /// <summary>AMQP port on <see cref="Host"/>.</summary>
    public int Port { get; } = ContainerSupport.FreeTcpPort();

    /// <summary>Management HTTP API port on <see cref="Host"/> (handy when debugging a test).</summary>
    public int ManagementPort { get; } = ContainerSupport.FreeTcpPort();

    public string Username { get; } = "callbackhub";

    public string Password { get; } = "callbackhub";

    private RabbitMqContainer Container =>
        _container ?? throw new InvalidOperationException("The RabbitMQ fixture has not been initialised.");

    public async Task InitializeAsync()
    {
        _container = await ContainerSupport.StartAsync(
            () => new RabbitMqBuilder(TestImages.RabbitMq)
                .WithUsername(Username)
                .WithPassword(Password)
                .WithPortBinding(Port, RabbitMqBuilder.RabbitMqPort)
                .WithPortBinding(ManagementPort, ManagementContainerPort)
                .Build(),
            "RabbitMQ", TestImages.RabbitMq, TestImages.RabbitMqVariable);
        await WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
        Dispose();
    }

    public void Dispose() => _management.Dispose();

    /// <summary>
    /// Creates a fresh virtual host on which the default user has every permission, and returns its
    /// <c>amqp://user:pass@127.0.0.1:port/vhost</c> URI.
    /// </summary>
    public async Task<string> CreateVirtualHostAsync(string? prefix = null)
    {
        var vhost = $"{prefix ?? "test"}-{Guid.NewGuid():N}";
        var escaped = Uri.EscapeDataString(vhost);
        using (var created = await _management.PutAsync(new Uri($"vhosts/{escaped}", UriKind.Relative), content: null))
        {
            created.EnsureSuccessStatusCode();
        }
        var permissions = new { configure = ".*", write = ".*", read = ".*" };
        using (var granted = await _management.PutAsJsonAsync(
            new Uri($"permissions/{escaped}/{Uri.EscapeDataString(Username)}", UriKind.Relative), permissions))
        {
            granted.EnsureSuccessStatusCode();
        }
        return AmqpUri(escaped);
    }

    /// <summary>Runs <c>rabbitmqctl</c> in the broker's container (e.g. a memory alarm, which makes the broker stop taking publishes).</summary>
    public async Task RabbitMqCtlAsync(params string[] arguments)
    {
        var result = await Container.ExecAsync(["rabbitmqctl", .. arguments]);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} failed ({result.ExitCode}): {result.Stderr}{result.Stdout}");
        }
    }

    /// <summary>Stops the broker (tests use this to see how the service behaves without it).</summary>
    public Task StopAsync() => Container.StopAsync();

    /// <summary>Starts the broker again on the same ports and waits until AMQP and the management API answer.</summary>
    public async Task StartAsync()
    {
        await Container.StartAsync();
        await WaitUntilReadyAsync();
    }

    private string AmqpUri(string escapedVhost) =>
        $"amqp://{Uri.EscapeDataString(Username)}:{Uri.EscapeDataString(Password)}@{Host}:{Port}/{escapedVhost}";

    // The module only waits for a log line; make sure both things tests use, AMQP and the management API, answer.
    private Task WaitUntilReadyAsync() =>
        ContainerSupport.WaitUntilAsync("RabbitMQ", async cancellationToken =>
        {
            var factory = new ConnectionFactory { Uri = new Uri(AmqpUri("%2F")) };
            await using var connection = await factory.CreateConnectionAsync(cancellationToken);
            using var overview = await _management.GetAsync(new Uri("overview", UriKind.Relative), cancellationToken);
            overview.EnsureSuccessStatusCode();
        }, ReadyTimeout);
}
