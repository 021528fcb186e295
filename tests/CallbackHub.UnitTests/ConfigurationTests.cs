using CallbackHub.Hosting;
using CallbackHub.Outbox;
using Microsoft.Extensions.Options;

namespace CallbackHub.UnitTests;

/// <summary>A missing or wrong setting stops the service at start with a sentence naming the key.</summary>
public sealed class ConfigurationTests
{
    private static readonly Dictionary<string, string> Valid = new()
    {
        ["ConnectionStrings__Postgres"] = "Host=127.0.0.1;Username=u;Password=p;Database=d",
        ["ConnectionStrings__RabbitMq"] = "amqp://u:p@127.0.0.1:5672/",
        ["Gateway__BaseUrl"] = "https://10.1.2.3:8043",
        ["Gateway__CallbackBaseUrl"] = "https://callbackhub.example:8443",
        ["Management__ApiKey"] = "0123456789abcdef0123",
    };

    [Theory]
    [InlineData("ConnectionStrings__Postgres", null, "ConnectionStrings__Postgres")]
    [InlineData("ConnectionStrings__Postgres", "Nonsense=1", "ConnectionStrings__Postgres")]
    [InlineData("ConnectionStrings__RabbitMq", null, "ConnectionStrings__RabbitMq")]
    [InlineData("ConnectionStrings__RabbitMq", "http://host", "ConnectionStrings__RabbitMq")]
    [InlineData("Gateway__BaseUrl", null, "Gateway__BaseUrl")]
    [InlineData("Gateway__BaseUrl", "not a url", "Gateway__BaseUrl")]
    [InlineData("Gateway__CallbackBaseUrl", null, "Gateway__CallbackBaseUrl")]
    [InlineData("Management__ApiKey", null, "Management__ApiKey")]
    [InlineData("Management__ApiKey", "short", "Management__ApiKey")]
    [InlineData("Callbacks__DuplicateWindow", "00:00:30", "Callbacks__DuplicateWindow")]
    [InlineData("Gateway__TrustedCaFile", "/no/such/ca.pem", "Gateway__TrustedCaFile")]
    [InlineData("Gateway__TrustedCertificateThumbprint", "not-hex", "Gateway__TrustedCertificateThumbprint")]
    [InlineData("Sessions__HeartbeatInterval", "00:03:00", "Sessions__HeartbeatInterval")]
    [InlineData("Agents__0__AgentId", "99", "Agents__0__AgentId")]
    [InlineData("Outbox__MaxQueued", "0", "Outbox__MaxQueued")]
    [InlineData("Outbox__IngestWaitWhenBehind", "-00:00:01", "Outbox__IngestWaitWhenBehind")]
    public async Task A_missing_or_invalid_setting_stops_the_start_naming_the_key(string key, string? value, string named)
    {
        var settings = new Dictionary<string, string>(Valid);
        if (value is null)
        {
            settings.Remove(key);
        }
        else
        {
            settings[key] = value;
        }

        var args = settings.Select(s => $"--{s.Key.Replace("__", ":", StringComparison.Ordinal)}={s.Value}").ToArray();
        await using var app = CallbackHubApp.Build(args);

        // Several failures arrive as an AggregateException of OptionsValidationExceptions.
        var error = await Assert.ThrowsAnyAsync<Exception>(() => app.StartAsync());
        Assert.True(error is OptionsValidationException or AggregateException { InnerException: OptionsValidationException }, error.ToString());
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public async Task Every_wrong_setting_is_named_at_once_one_sentence_per_key()
    {
        string[] args = ["--Gateway:Timeout=abc", "--Sessions:SignOutOnShutdown=maybe", "--Outbox:MaxInFlight=many"];
        await using var app = CallbackHubApp.Build(args);

        var problems = await CallbackHubApp.SettingsProblemsAsync(app, args);

        // Gateway__BaseUrl is reported although Gateway__Timeout, in the same section, stops the binder.
        Assert.Equal(
            [
                "ConnectionStrings__Postgres is required (an Npgsql connection string, e.g. Host=db;Username=callbackhub;Password=…;Database=callbackhub).",
                "ConnectionStrings__RabbitMq is required (amqp://user:pass@host:port/vhost).",
                "Outbox__MaxInFlight must be a whole number; 'many' is not.",
                "Gateway__Timeout must be a duration such as 00:00:30; 'abc' is not.",
                "Management__ApiKey is required: every /api request must carry it in the X-Api-Key header.",
                "Sessions__SignOutOnShutdown must be true or false; 'maybe' is not.",
                "Gateway__BaseUrl is required and must be an absolute http(s) URL, e.g. https://10.1.2.3:8043.",
                "Gateway__CallbackBaseUrl is required and must be an absolute http(s) URL at which the gateway reaches this service.",
            ],
            problems);
    }

    [Fact]
    public async Task Valid_settings_have_no_problems()
    {
        var args = Valid.Select(s => $"--{s.Key.Replace("__", ":", StringComparison.Ordinal)}={s.Value}").ToArray();
        await using var app = CallbackHubApp.Build(args);

        Assert.Empty(await CallbackHubApp.SettingsProblemsAsync(app, args));
    }

    [Theory]
    [InlineData("Host=db;Username=u;Password=p", 40)]
    [InlineData("Host=db;Username=u;Password=p;Maximum Pool Size=80", 80)]
    [InlineData("Host=db;Username=u;Password=p;maxpoolsize=12", 12)]
    public void The_connection_pool_is_bounded_below_PostgreSQLs_default_connection_limit_unless_set(string connectionString, int poolSize) =>
        Assert.Equal(poolSize, new Npgsql.NpgsqlConnectionStringBuilder(CallbackHub.Storage.DatabaseOptions.WithPoolBound(connectionString)).MaxPoolSize);

    [Theory]
    [InlineData("Host=db;Username=u;Password=p", true)]
    [InlineData("Host=db;Username=u;Password=p;No Reset On Close=false", false)]
    public void Pooled_connections_are_not_reset_on_return_unless_the_connection_string_asks_for_it(string connectionString, bool noReset) =>
        Assert.Equal(noReset, new Npgsql.NpgsqlConnectionStringBuilder(CallbackHub.Storage.DatabaseOptions.WithPoolBound(connectionString)).NoResetOnClose);

    [Theory]
    [InlineData("Host=db;Username=u;Password=p", "CallbackHub")]
    [InlineData("Host=db;Username=u;Password=p;Application Name=hub-eu", "hub-eu")]
    public void Sessions_are_named_CallbackHub_unless_the_connection_string_names_them(string connectionString, string name) =>
        Assert.Equal(name, new Npgsql.NpgsqlConnectionStringBuilder(CallbackHub.Storage.DatabaseOptions.WithPoolBound(connectionString)).ApplicationName);

    [Theory]
    [InlineData("amqp://guest:guest@rabbit:5672/", "rabbit", 5672, "/", "guest", "guest", false)]
    [InlineData("amqp://u:p%40ss@rabbit/", "rabbit", 5672, "/", "u", "p@ss", false)]
    [InlineData("amqps://u:p@rabbit/prod", "rabbit", 5671, "prod", "u", "p", true)]
    [InlineData("amqp://u:p@rabbit:5673/%2f", "rabbit", 5673, "/", "u", "p", false)]
    public void RabbitMq_uris_are_read_like_the_RabbitMQ_uri_spec(
        string uri, string host, int port, string vhost, string user, string password, bool tls)
    {
        Assert.True(RabbitMqAddress.TryParse(uri, out var address));
        Assert.Equal(new RabbitMqAddress(host, port, vhost, user, password, tls), address);
    }
}
