using CallbackHub.Publishing;
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
    [InlineData("ConnectionStrings__Postgres", null, "ConnectionStrings:Postgres")]
    [InlineData("ConnectionStrings__Postgres", "Nonsense=1", "ConnectionStrings:Postgres")]
    [InlineData("ConnectionStrings__RabbitMq", null, "ConnectionStrings:RabbitMq")]
    [InlineData("ConnectionStrings__RabbitMq", "http://host", "ConnectionStrings:RabbitMq")]
    [InlineData("Gateway__BaseUrl", null, "Gateway:BaseUrl")]
    [InlineData("Gateway__BaseUrl", "not a url", "Gateway:BaseUrl")]
    [InlineData("Gateway__CallbackBaseUrl", null, "Gateway:CallbackBaseUrl")]
    [InlineData("Management__ApiKey", null, "Management:ApiKey")]
    [InlineData("Management__ApiKey", "short", "Management:ApiKey")]
    [InlineData("Callbacks__DuplicateWindow", "00:00:30", "Callbacks:DuplicateWindow")]
    [InlineData("Gateway__TrustedCaFile", "/no/such/ca.pem", "Gateway:TrustedCaFile")]
    [InlineData("Gateway__TrustedCertificateThumbprint", "not-hex", "Gateway:TrustedCertificateThumbprint")]
    [InlineData("Sessions__HeartbeatInterval", "00:03:00", "Sessions:HeartbeatInterval")]
    [InlineData("Agents__0__AgentId", "99", "Agents:0:AgentId")]
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
