using System.Text.RegularExpressions;
using CallbackHub.ContainerTests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace CallbackHub.ContainerTests;

/// <summary>
/// What CI can check of the deployment files without running them (no cluster here; the images and the compose demo
/// are built and run by ImageBuildTests and RunScriptTests): they parse, and everything they point at exists.
/// </summary>
public sealed partial class DeploymentFilesTests
{
    [Fact]
    public void Compose_file_parses_and_references_only_files_and_services_that_exist()
    {
        var services = Mapping(Load("docker-compose.yml").Single(), "services");
        Assert.Equal(["callbackhub", "gateway", "postgres", "rabbitmq"], services.Children.Keys.Select(k => k.ToString()).Order());

        foreach (var (name, node) in services.Children)
        {
            var service = (YamlMappingNode)node;
            if (service.Children.TryGetValue("build", out var buildNode))
            {
                var build = (YamlMappingNode)buildNode;
                var context = Repository.PathOf(Scalar(build, "context"));
                Assert.True(Directory.Exists(context), $"{name}: build context {context} is missing");
                var dockerfile = Path.Combine(context, Scalar(build, "dockerfile"));
                Assert.True(File.Exists(dockerfile), $"{name}: {dockerfile} is missing");
                var target = Regex.Match(Scalar(build, "target"), @"^\$\{[A-Z_]+:-(\w+)\}$").Groups[1].Value;
                Assert.Matches($@"(?m)^FROM .+ AS {target}$", File.ReadAllText(dockerfile));
            }
            else
            {
                // Official images by default, overridable for machines without a registry.
                Assert.Matches(@"^\$\{[A-Z_]+_IMAGE:-[^}]+\}$", Scalar(service, "image"));
            }

            if (service.Children.TryGetValue("depends_on", out var dependsOn))
            {
                Assert.All(((YamlMappingNode)dependsOn).Children.Keys, d => Assert.Contains(d, services.Children.Keys));
            }

            foreach (var volume in service.Children.TryGetValue("volumes", out var volumes) ? (YamlSequenceNode)volumes : [])
            {
                var source = volume.ToString().Split(':')[0];
                Assert.True(!source.StartsWith('.') || Path.Exists(Repository.PathOf(source)), $"{name}: {source} is missing");
            }
        }

        var hub = (YamlMappingNode)services.Children["callbackhub"];
        var environment = Mapping(hub, "environment").Children.Keys.Select(k => k.ToString()).ToList();
        Assert.Contains("Agents__0__AgentId", environment);
        Assert.Contains("Logging__Console__FormatterName", environment);
        Assert.Contains("Simulator__Play__EventsPerSecond", Mapping((YamlMappingNode)services.Children["gateway"], "environment").Children.Keys.Select(k => k.ToString()));
    }

    [Fact]
    public void Dockerfile_copies_only_files_that_exist()
    {
        var sources = CopyLine().Matches(File.ReadAllText(Repository.PathOf("deploy/Dockerfile")))
            .SelectMany(m => m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1])
            .Where(source => !source.Contains('$', StringComparison.Ordinal))
            .ToList();

        Assert.NotEmpty(sources);
        Assert.All(sources, source => Assert.True(Path.Exists(Repository.PathOf(source)), $"COPY {source}: missing"));
    }

    [Fact]
    public void Both_dockerignore_files_exclude_the_same_paths()
    {
        // The classic builder reads the root .dockerignore, BuildKit deploy/Dockerfile.dockerignore: one context either way.
        static List<string> Patterns(string path) =>
            [.. File.ReadAllLines(Repository.PathOf(path)).Where(l => l.Length > 0 && !l.StartsWith('#')).Order(StringComparer.Ordinal)];

        var root = Patterns(".dockerignore");
        Assert.Equal(root, Patterns("deploy/Dockerfile.dockerignore"));
        Assert.Contains("**/obj", root);
        Assert.DoesNotContain(root, p => p.StartsWith("deploy", StringComparison.Ordinal));
    }

    [Fact]
    public void Kubernetes_manifests_parse_and_probe_endpoints_the_service_has()
    {
        var documents = Directory.GetFiles(Repository.PathOf("deploy/kubernetes"), "*.yaml").SelectMany(Load).ToList();
        var kinds = documents.Select(d => Scalar(d, "kind")).ToList();
        Assert.Subset(kinds.ToHashSet(), new HashSet<string> { "Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret" });

        var deployment = documents.Single(d => Scalar(d, "kind") == "Deployment");
        var spec = Mapping(deployment, "spec");
        Assert.True(int.Parse(Scalar(spec, "replicas"), System.Globalization.CultureInfo.InvariantCulture) >= 2);
        var container = (YamlMappingNode)((YamlSequenceNode)Mapping(Mapping(spec, "template"), "spec").Children["containers"]).Children[0];
        foreach (var probe in new[] { "livenessProbe", "readinessProbe" })
        {
            Assert.Matches("^/health/(live|accepting|ready)$", Scalar(Mapping(Mapping(container, probe), "httpGet"), "path"));
        }
    }

    private static List<YamlMappingNode> Load(string relativePath)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.IsPathRooted(relativePath) ? relativePath : Repository.PathOf(relativePath));
        stream.Load(reader);
        return [.. stream.Documents.Select(d => (YamlMappingNode)d.RootNode)];
    }

    private static YamlMappingNode Mapping(YamlMappingNode node, string key) => (YamlMappingNode)node.Children[key];

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node.Children[key]).Value!;

    // COPY without --from: its sources come from the build context (the repository root).
    [GeneratedRegex(@"(?m)^COPY (?!--from)(.+)$")]
    private static partial Regex CopyLine();
}
