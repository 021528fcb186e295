namespace CallbackHub.ContainerTests.Infrastructure;

/// <summary>
/// Builds the CallbackHub and simulator images from deploy/Dockerfile, once per test run: the projects are published
/// self-contained on the host (where NuGet answers) and the Dockerfile's <c>prebuilt</c> target copies them onto
/// <see cref="Images.Runtime"/> — exactly what an offline machine does. Docker's layer cache makes unchanged
/// rebuilds cheap; each run tags its own images and removes the tags at the end.
/// </summary>
public sealed class ServiceImages : IAsyncLifetime
{
    public const string Hub = "CallbackHub";
    public const string Simulator = "CallbackHub.GatewaySimulator";

    private readonly string _work = Path.Combine(Path.GetTempPath(), $"callbackhub-images-{Guid.NewGuid():N}");
    private readonly List<string> _tags = [];

    public string HubImage { get; private set; } = "";
    public string SimulatorImage { get; private set; } = "";

    public async Task InitializeAsync()
    {
        HubImage = await BuildAsync(Hub, "/health/ready");
        SimulatorImage = await BuildAsync(Simulator, "/simulator/play");
    }

    public async Task DisposeAsync()
    {
        // Only this run's tags: the layers stay in Docker's cache for the next run.
        foreach (var tag in _tags)
        {
            await RunAsync("docker", "rmi", "--no-prune", tag);
        }

        Directory.Delete(_work, recursive: true);
    }

    private async Task<string> BuildAsync(string project, string healthPath)
    {
        var context = Path.Combine(_work, project);
        var publish = Path.Combine(context, "deploy", "publish", project);
        // A private artifacts path keeps this publish (linux-x64, self-contained) off the checkout's obj/ folders,
        // which the running test build and other tools share.
        await RunAsync("dotnet", "publish", Repository.PathOf($"src/{project}/{project}.csproj"), "-c", "Release",
            "-r", "linux-x64", "--self-contained", "--artifacts-path", Path.Combine(_work, "artifacts"), "-o", publish, "-nologo",
            // No compiler or MSBuild server outliving the publish: they would inherit (and hold open) our pipes.
            "--disable-build-servers");
        var dockerfile = Path.Combine(context, "deploy", "Dockerfile");
        File.Copy(Repository.PathOf("deploy/Dockerfile"), dockerfile);

        // The docker CLI rather than Testcontainers' builder, which pulls every FROM image of the file first — also
        // the SDK image the prebuilt target never uses. The classic builder (as in deploy/images) stops at the target.
        var tag = $"callbackhub-test/{project.ToLowerInvariant()}:{Guid.NewGuid():N}";
        try
        {
            await RunAsync("docker", "build", "--force-rm", "--file", dockerfile, "--target", "prebuilt", "--tag", tag,
                "--build-arg", $"RUNTIME_IMAGE={Images.Runtime}", "--build-arg", $"PROJECT={project}",
                "--build-arg", $"HEALTHCHECK_PATH={healthPath}", context);
        }
        catch (InvalidOperationException exception)
        {
            throw new InvalidOperationException(
                $"Could not build the {project} image FROM '{Images.Runtime}'. Run the tests with `bash deploy/test.sh` (it sets "
                + $"{Images.RuntimeVariable} to the local Debian base when no registry answers) or set it to an image you have. "
                + $"Cause: {exception.Message}", exception);
        }

        _tags.Add(tag);
        return tag;
    }

    private static Task<CommandResult> RunAsync(string file, params string[] arguments) =>
        Command.SucceedAsync(file, arguments, environment: new Dictionary<string, string> { ["DOCKER_BUILDKIT"] = "0" });
}
