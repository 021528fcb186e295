using CallbackHub.ContainerTests.Infrastructure;

namespace CallbackHub.ContainerTests;

/// <summary>
/// deploy/Dockerfile built exactly as README.md shows it: from the repository root, so the root .dockerignore applies,
/// with the classic builder (DOCKER_BUILDKIT=0, what docker-compose v1 uses and the only one on Debian's engine), which
/// runs every stage before its target. Docker's layer cache keeps later runs short; each test removes its tag.
/// </summary>
[Collection(CheckoutCollection.Name)]
public sealed class ImageBuildTests
{
    private static readonly Dictionary<string, string> ClassicBuilder = new() { ["DOCKER_BUILDKIT"] = "0" };

    /// <summary>README, "Run it in containers", offline: publish on the host into deploy/publish, then --target prebuilt.</summary>
    [Fact]
    public async Task Prebuilt_target_builds_from_the_repository_root_after_a_host_publish()
    {
        await Command.SucceedAsync("dotnet", [
            "publish", "src/CallbackHub", "-c", "Release", "-r", "linux-x64", "--self-contained", "-o", "deploy/publish/CallbackHub",
            // Beyond the README's command: intermediate files where deploy/run.sh keeps its own (not the projects' obj/
            // folders, which the running test build shares), and no build server left holding our pipes.
            "--artifacts-path", "artifacts/run", "--disable-build-servers", "-nologo",
        ]);

        await AssertBuildsAndRunsAsync("--target", "prebuilt", "--build-arg", $"RUNTIME_IMAGE={Images.Runtime}");
    }

    /// <summary>README, "Run it in containers": restore and publish inside the SDK image (the default target).</summary>
    [Fact]
    public async Task Final_target_builds_from_the_repository_root_inside_the_sdk_image()
    {
        await AssertBuildsAndRunsAsync("--build-arg", $"SDK_IMAGE={Images.Sdk}", "--build-arg", $"RUNTIME_IMAGE={Images.Runtime}");
    }

    private static async Task AssertBuildsAndRunsAsync(params string[] buildArguments)
    {
        var id = Guid.NewGuid().ToString("N");
        var tag = $"callbackhub-test/readme-build:{id}";
        try
        {
            var build = await Command.RunAsync("docker",
                ["build", "--force-rm", "-f", "deploy/Dockerfile", .. buildArguments, "-t", tag, "."], environment: ClassicBuilder);
            Assert.True(build.ExitCode == 0,
                $"{build}\nNo registry here? Run the tests with `bash deploy/test.sh`: it sets {Images.SdkVariable} and "
                + $"{Images.RuntimeVariable} to local stand-ins.");

            var entrypoint = await Command.SucceedAsync("docker", ["image", "inspect", "--format", "{{json .Config.Entrypoint}} {{.Config.User}}", tag]);
            Assert.Equal("""["/app/entrypoint"] app""", entrypoint.Output.Trim());

            // The app itself runs: with no settings at all it stops at once, naming a setting it misses.
            var start = await Command.RunAsync("docker", ["run", "--rm", "--name", $"callbackhub-test-{id}", tag], timeout: TimeSpan.FromSeconds(60));
            Assert.True(start.ExitCode is not 0 and not 125 and not 126 and not 127, start.ToString());
            Assert.Contains("ConnectionStrings__Postgres", start.Output, StringComparison.Ordinal);

            // ...and carries every migration of migrations/, which the project compiles from outside src/.
            var migrations = Directory.GetFiles(Repository.PathOf("migrations"), "2*.cs")
                .Where(f => !f.EndsWith(".Designer.cs", StringComparison.Ordinal))
                .Select(Path.GetFileNameWithoutExtension).OfType<string>().ToList();
            Assert.NotEmpty(migrations);
            var missing = await Command.RunAsync("docker", [
                "run", "--rm", "--entrypoint", "bash", tag, "-c",
                """for id; do grep -qaF "$id" /app/CallbackHub.dll || echo "missing $id"; done""", "_", .. migrations]);
            Assert.True(missing.ExitCode == 0 && missing.Output.Trim().Length == 0, missing.ToString());
        }
        finally
        {
            // A container that did not stop in time, and the tag only: the layers stay cached for the next run.
            await Command.RunAsync("docker", ["rm", "--force", $"callbackhub-test-{id}"]);
            await Command.RunAsync("docker", ["rmi", "--no-prune", tag]);
        }
    }
}
