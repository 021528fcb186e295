using System.Text.RegularExpressions;

namespace CallbackHub.ContainerTests.Infrastructure;

/// <summary>
/// Images the container tests run. PostgreSQL and RabbitMQ come from the same variables as the integration tests;
/// the service images are built FROM <see cref="Runtime"/>, and the Dockerfile's final target with <see cref="Sdk"/>,
/// which deploy/test.sh points at the local Debian base and the local SDK stand-in when no registry answers.
/// </summary>
internal static partial class Images
{
    public const string RuntimeVariable = "CALLBACKHUB_TEST_RUNTIME_IMAGE";
    public const string SdkVariable = "CALLBACKHUB_TEST_SDK_IMAGE";

    public static string Postgres => FromEnvironment("CALLBACKHUB_TEST_POSTGRES_IMAGE", "postgres:15.10-alpine");

    public static string RabbitMq => FromEnvironment("CALLBACKHUB_TEST_RABBITMQ_IMAGE", "rabbitmq:3.13.7-management-alpine");

    /// <summary>The default is deploy/Dockerfile's own RUNTIME_IMAGE default.</summary>
    public static string Runtime => FromEnvironment(RuntimeVariable, DockerfileDefault("RUNTIME_IMAGE"));

    /// <summary>The default is deploy/Dockerfile's own SDK_IMAGE default.</summary>
    public static string Sdk => FromEnvironment(SdkVariable, DockerfileDefault("SDK_IMAGE"));

    private static string FromEnvironment(string variable, string fallback) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value.Trim() : fallback;

    private static string DockerfileDefault(string argument) =>
        ArgLine().Matches(File.ReadAllText(Repository.PathOf("deploy/Dockerfile")))
            .First(m => m.Groups[1].Value == argument).Groups[2].Value.Trim();

    [GeneratedRegex(@"(?m)^ARG (\w+)=(.+)$")]
    private static partial Regex ArgLine();
}
