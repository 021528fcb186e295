namespace CallbackHub.ContainerTests.Infrastructure;

/// <summary>
/// Images the container tests run. PostgreSQL and RabbitMQ come from the same variables as the integration tests;
/// the service images are built FROM <see cref="Runtime"/>, which deploy/test.sh points at the local Debian base
/// when no registry answers.
/// </summary>
internal static class Images
{
    public const string RuntimeVariable = "CALLBACKHUB_TEST_RUNTIME_IMAGE";

    public static string Postgres => FromEnvironment("CALLBACKHUB_TEST_POSTGRES_IMAGE", "postgres:15.10-alpine");

    public static string RabbitMq => FromEnvironment("CALLBACKHUB_TEST_RABBITMQ_IMAGE", "rabbitmq:3.13.7-management-alpine");

    /// <summary>The default is deploy/Dockerfile's own RUNTIME_IMAGE default.</summary>
    public static string Runtime => FromEnvironment(RuntimeVariable, "dotnet/runtime-deps:10.0");

    private static string FromEnvironment(string variable, string fallback) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value.Trim() : fallback;
}
