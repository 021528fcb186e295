namespace CallbackHub.IntegrationTests.Infrastructure;

/// <summary>
/// Container images the fixtures start. The defaults are pinned official images; deploy/test.sh points the
/// variables at images built from Debian packages (deploy/images) on machines that reach no container registry.
/// </summary>
public static class TestImages
{
    public const string PostgresVariable = "CALLBACKHUB_TEST_POSTGRES_IMAGE";
    public const string RabbitMqVariable = "CALLBACKHUB_TEST_RABBITMQ_IMAGE";

    public const string DefaultPostgres = "postgres:15.10-alpine";

    // The management plugin is required: RabbitMqFixture creates virtual hosts through its HTTP API.
    public const string DefaultRabbitMq = "rabbitmq:3.13.7-management-alpine";

    public static string Postgres => FromEnvironment(PostgresVariable, DefaultPostgres);

    public static string RabbitMq => FromEnvironment(RabbitMqVariable, DefaultRabbitMq);

    private static string FromEnvironment(string variable, string fallback)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(value) ? fallback : value.Trim();
    }
}
