namespace CallbackHub.ContainerTests.Infrastructure;

internal static class Repository
{
    /// <summary>The checkout's root (where CallbackHub.sln is), found upwards from the test assembly.</summary>
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

        throw new InvalidOperationException($"No CallbackHub.sln above {AppContext.BaseDirectory}.");
    }
}
