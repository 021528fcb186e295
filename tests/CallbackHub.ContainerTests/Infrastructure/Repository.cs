using System.Reflection;

namespace CallbackHub.ContainerTests.Infrastructure;

internal static class Repository
{
    /// <summary>
    /// The checkout's root (where CallbackHub.sln is), found upwards from the test assembly, else the one it was built
    /// from (an assembly built with --artifacts-path elsewhere).
    /// </summary>
    public static string Root { get; } = Find();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CallbackHub.sln")))
            {
                return directory.FullName;
            }
        }

        var builtFrom = typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .SingleOrDefault(a => a.Key == "RepositoryRoot")?.Value;
        return builtFrom is not null && File.Exists(Path.Combine(builtFrom, "CallbackHub.sln"))
            ? builtFrom
            : throw new InvalidOperationException($"No CallbackHub.sln above {AppContext.BaseDirectory} nor in {builtFrom}.");
    }
}
