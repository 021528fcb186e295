namespace CallbackHub.Hosting;

/// <summary>What an operator reads when the service cannot start: a line per problem, like PostgreSQL's own start.</summary>
internal static class StartupFailure
{
    public static string Describe(IReadOnlyList<string> problems) =>
        $"CallbackHub cannot start ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}):"
        + string.Concat(problems.Select(problem => Environment.NewLine + "  - " + problem));
}
