using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CallbackHub.ContainerTests.Infrastructure;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Networks;
using Npgsql;
using Testcontainers.PostgreSql;
using Testcontainers.RabbitMq;

namespace CallbackHub.ContainerTests;

/// <summary>
/// The shipped images, run the way docker-compose.yml and the Kubernetes manifests run them: PostgreSQL, RabbitMQ,
/// the gateway simulator and CallbackHub as containers on one network, configured through environment variables
/// only, talking HTTPS both ways with certificates of a private CA.
/// </summary>
public sealed class ContainerPipelineTests(ServiceImages images) : IClassFixture<ServiceImages>, IAsyncLifetime, IDisposable
{
    private const string ApiKey = "container-test-api-key-0123456789";
    private static readonly int[] Agents = [1001, 1002, 1003];

    private readonly TestCertificates _certificates = new();
    private readonly List<IAsyncDisposable> _owned = [];
    private INetwork _network = null!;
    private PostgreSqlContainer _postgres = null!;
    private RabbitMqContainer _rabbitMq = null!;
    private IContainer _gateway = null!;
    private HttpClient _gatewayControl = null!;

    public async Task InitializeAsync()
    {
        _network = Own(new NetworkBuilder().WithName($"callbackhub-test-{Guid.NewGuid():N}").Build());
        await _network.CreateAsync();
        _postgres = Own(new PostgreSqlBuilder(Images.Postgres).WithNetwork(_network).WithNetworkAliases("postgres")
            .WithUsername("callbackhub").WithPassword("callbackhub").WithDatabase("callbackhub").Build());
        _rabbitMq = Own(new RabbitMqBuilder(Images.RabbitMq).WithNetwork(_network).WithNetworkAliases("rabbitmq")
            .WithUsername("callbackhub").WithPassword("callbackhub").Build());
        var (certificate, key) = _certificates.Issue("gateway");
        _gateway = Own(new ContainerBuilder(images.SimulatorImage).WithNetwork(_network).WithNetworkAliases("gateway")
            .WithPortBinding(8080, true)
            .WithResourceMapping(Encoding.ASCII.GetBytes(_certificates.AuthorityPem), "/certs/ca.crt")
            .WithResourceMapping(certificate, "/certs/tls.crt")
            .WithResourceMapping(key, "/certs/tls.key")
            .WithEnvironment(new Dictionary<string, string>
            {
                ["Kestrel__Endpoints__Https__Url"] = "https://+:8443",
                ["Kestrel__Endpoints__Https__Certificate__Path"] = "/certs/tls.crt",
                ["Kestrel__Endpoints__Https__Certificate__KeyPath"] = "/certs/tls.key",
                ["Simulator__TrustedCaFile"] = "/certs/ca.crt",
                ["Simulator__Play__EventsPerSecond"] = "60",
                ["Simulator__PushRetryInterval"] = "00:00:01",
            })
            .WithWaitStrategy(Wait.ForUnixContainer().UntilHttpRequestIsSucceeded(r => r.ForPort(8080).ForPath("/simulator/play")))
            .Build());
        await Task.WhenAll(_postgres.StartAsync(), _rabbitMq.StartAsync(), _gateway.StartAsync());
        _gatewayControl = new HttpClient { BaseAddress = new Uri($"http://{_gateway.Hostname}:{_gateway.GetMappedPublicPort(8080)}") };
    }

    [Fact]
    public async Task Events_flow_over_https_and_sigterm_loses_nothing_accepted_and_signs_the_agents_out()
    {
        await using var consumer = await Consumer.StartAsync(_rabbitMq.GetConnectionString());
        var hub = await StartHubAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://{hub.Hostname}:{hub.GetMappedPublicPort(8080)}") };

        // Events flow: the roster is signed in over HTTPS, the player's pushes arrive over HTTPS and reach the consumer.
        var flowing = await consumer.WaitForAsync(r => Agents.All(a => r.Count(e => e.AgentId == a) >= 20), TimeSpan.FromSeconds(60));
        Assert.All(Agents, a => Assert.True(flowing.Count(e => e.AgentId == a) >= 20, $"agent {a}: {flowing.Count(e => e.AgentId == a)} events"));
        using (var ready = await http.GetAsync(new Uri("/health/ready", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        // SIGTERM in the middle of the stream, as `docker stop` and Kubernetes send it.
        await DockerAsync("kill", "--signal", "SIGTERM", hub.Id);
        Assert.Equal(0, await hub.GetExitCodeAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        using (await _gatewayControl.DeleteAsync(new Uri("/simulator/play", UriKind.Relative)))
        {
        }

        // Nothing accepted is lost: every event of every push answered "0" is stored, and every stored event published.
        var accepted = await AcceptedEventsAsync();
        var stored = await StoredEventsAsync();
        Assert.True(accepted.Count > 60, $"only {accepted.Count} events were accepted");
        var missing = accepted.GroupBy(e => e).Where(g => stored.Count(s => s.Key == g.Key) < g.Count()).Select(g => g.Key).ToList();
        Assert.True(missing.Count == 0, $"accepted but not stored: {string.Join(", ", missing.Take(5))}");
        Assert.All(stored, s => Assert.True(s.Published, $"{s.Key} was stored but not published before the exit"));
        var received = await consumer.WaitForAsync(r => stored.All(s => r.Any(e => e.EventId == s.EventId)), TimeSpan.FromSeconds(15));
        Assert.All(stored, s => Assert.Contains(received, e => e.EventId == s.EventId));

        // The agents were signed out through the gateway's logout before the process ended.
        var requests = (await _gatewayControl.GetFromJsonAsync<JsonArray>(new Uri("/simulator/requests", UriKind.Relative)))!;
        Assert.All(Agents, agent => Assert.Contains(requests, r =>
            r!["method"]!.GetValue<string>() == "DELETE"
            && r["path"]!.GetValue<string>() == $"/agentgateway/resource/onlineagent/{agent}/logout"
            && r["retcode"]?.GetValue<string>() == "0"));

        // Logs are JSON lines, and carry neither the agents' tokens nor the API key.
        var (stdout, _) = await hub.GetLogsAsync(timestampsEnabled: false);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        Assert.All(lines, line => Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(line).RootElement.ValueKind));
        var tokens = await TokensGivenToTheGatewayAsync();
        Assert.NotEmpty(tokens);
        Assert.DoesNotContain(lines, line => line.Contains(ApiKey, StringComparison.Ordinal) || tokens.Any(t => line.Contains(t, StringComparison.Ordinal)));
    }

    private async Task<IContainer> StartHubAsync()
    {
        var (certificate, key) = _certificates.Issue("callbackhub");
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Postgres"] = "Host=postgres;Database=callbackhub;Username=callbackhub;Password=callbackhub",
            ["ConnectionStrings__RabbitMq"] = "amqp://callbackhub:callbackhub@rabbitmq:5672/",
            ["Gateway__BaseUrl"] = "https://gateway:8443",
            ["Gateway__TrustedCaFile"] = "/certs/ca.crt",
            ["Gateway__CallbackBaseUrl"] = "https://callbackhub:8443",
            ["Kestrel__Endpoints__Https__Url"] = "https://+:8443",
            ["Kestrel__Endpoints__Https__Certificate__Path"] = "/certs/tls.crt",
            ["Kestrel__Endpoints__Https__Certificate__KeyPath"] = "/certs/tls.key",
            ["Management__ApiKey"] = ApiKey,
            ["Logging__Console__FormatterName"] = "json",
        };
        for (var i = 0; i < Agents.Length; i++)
        {
            environment[$"Agents__{i}__AgentId"] = Agents[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
            environment[$"Agents__{i}__Password"] = "secret";
            environment[$"Agents__{i}__PhoneNumber"] = $"7000{i}";
        }

        var hub = Own(new ContainerBuilder(images.HubImage).WithNetwork(_network).WithNetworkAliases("callbackhub")
            .WithPortBinding(8080, true)
            .WithResourceMapping(Encoding.ASCII.GetBytes(_certificates.AuthorityPem), "/certs/ca.crt")
            .WithResourceMapping(certificate, "/certs/tls.crt")
            .WithResourceMapping(key, "/certs/tls.key")
            .WithEnvironment(environment)
            .WithWaitStrategy(Wait.ForUnixContainer().UntilHttpRequestIsSucceeded(r => r.ForPort(8080).ForPath("/health/ready")))
            .Build());
        await hub.StartAsync();
        return hub;
    }

    /// <summary>(agent, eventType, eventGenTime) of every event in every push CallbackHub acknowledged.</summary>
    private async Task<List<string>> AcceptedEventsAsync()
    {
        var pushes = (await _gatewayControl.GetFromJsonAsync<JsonArray>(new Uri("/simulator/pushes", UriKind.Relative)))!;
        var accepted = new List<string>();
        foreach (var push in pushes.Where(p => p!["acknowledged"]!.GetValue<bool>()))
        {
            Assert.StartsWith("https://callbackhub:8443/", push!["url"]!.GetValue<string>(), StringComparison.Ordinal);
            var body = JsonNode.Parse(push["body"]!.GetValue<string>())!;
            accepted.AddRange(body["eventList"]!.AsArray().Select(e =>
                $"{body["workNo"]}/{e!["eventType"]}/{e["eventGenTime"]}"));
        }

        return accepted;
    }

    private async Task<List<StoredEvent>> StoredEventsAsync()
    {
        await using var connection = new NpgsqlConnection(_postgres.GetConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT e.event_id, e.agent_id, e.event_type, (extract(epoch FROM e.event_gen_time) * 1000)::bigint, e.sequence <= s.published_sequence
            FROM agent_events e JOIN agent_streams s ON s.agent_id = e.agent_id
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<StoredEvent>();
        while (await reader.ReadAsync())
        {
            var genTime = reader.IsDBNull(3) ? "" : reader.GetInt64(3).ToString(System.Globalization.CultureInfo.InvariantCulture);
            rows.Add(new StoredEvent(reader.GetGuid(0), $"{reader.GetInt32(1)}/{reader.GetString(2)}/{genTime}", reader.GetBoolean(4)));
        }

        return rows;
    }

    private async Task<List<string>> TokensGivenToTheGatewayAsync()
    {
        var pushes = (await _gatewayControl.GetFromJsonAsync<JsonArray>(new Uri("/simulator/pushes", UriKind.Relative)))!;
        return [.. pushes.Select(p => p!["serviceToken"]?.GetValue<string>()).OfType<string>().Where(t => t.Length > 0).Distinct()];
    }

    private static async Task DockerAsync(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("docker", arguments) { RedirectStandardError = true })!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"docker {string.Join(' ', arguments)}: {error}");
    }

    private T Own<T>(T resource)
        where T : IAsyncDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    public void Dispose()
    {
        _gatewayControl?.Dispose();
        _certificates.Dispose();
    }

    public async Task DisposeAsync()
    {
        // Containers before the network they are attached to.
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
    }

    private sealed record StoredEvent(Guid EventId, string Key, bool Published);
}
