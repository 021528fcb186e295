using CallbackHub.IntegrationTests.Infrastructure;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>
/// Each test gets its own database, its own RabbitMQ virtual host, a gateway simulator and a CallbackHub
/// wired to all three — nothing leaks from one test to the next.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public abstract class PipelineTest(PostgresFixture postgres, RabbitMqFixture rabbitMq) : IAsyncLifetime
{
    internal const int Agent = 1001;

    protected PostgresFixture Postgres { get; } = postgres;
    protected RabbitMqFixture RabbitMq { get; } = rabbitMq;
    protected string Database { get; private set; } = "";
    protected string Broker { get; private set; } = "";
    internal SimulatorInstance Gateway { get; private set; } = null!;
    internal CallbackHubInstance Hub { get; private set; } = null!;

    /// <summary>Extra CallbackHub settings for a test class.</summary>
    protected virtual IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>();

    /// <summary>Extra simulator settings for a test class.</summary>
    protected virtual IReadOnlyDictionary<string, string?> GatewaySettings => new Dictionary<string, string?>();

    /// <summary>Lets a test class replace services (e.g. the TimeProvider) of CallbackHub and of the simulator.</summary>
    protected virtual void ConfigureHub(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder)
    {
    }

    protected virtual void ConfigureGateway(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder)
    {
    }

    public virtual async Task InitializeAsync()
    {
        Database = await Postgres.CreateDatabaseAsync("hub");
        Broker = await RabbitMq.CreateVirtualHostAsync("hub");
        Gateway = await SimulatorInstance.StartAsync(GatewaySettings, ConfigureGateway);
        Hub = await StartHubAsync();
    }

    internal Task<CallbackHubInstance> StartHubAsync(IReadOnlyDictionary<string, string?>? extra = null, Uri? baseUri = null, Uri? callbackBase = null)
    {
        var settings = new Dictionary<string, string?>(HubSettings);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        if (callbackBase is not null)
        {
            settings["Gateway:CallbackBaseUrl"] = callbackBase.ToString();
        }

        return CallbackHubInstance.StartAsync(Database, Broker, Gateway.BaseUri, settings, ConfigureHub, baseUri);
    }

    /// <summary>Signs the agent in through the API and returns the token the gateway was given.</summary>
    internal async Task<string> SignInAsync(int agentId = Agent)
    {
        using var response = await Hub.SignInAsync(agentId);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        return await Gateway.ServiceTokenAsync(agentId);
    }

    internal static object Event(string eventType, object? content = null, long? eventGenTime = null) =>
        new { eventType, content, eventGenTime };

    public virtual async Task DisposeAsync()
    {
        await Hub.DisposeAsync();
        await Gateway.DisposeAsync();
    }
}
