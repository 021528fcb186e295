using CallbackHub.Agents;
using CallbackHub.Callbacks;
using CallbackHub.Gateway;
using CallbackHub.Hosting;
using CallbackHub.Observability;
using CallbackHub.Outbox;
using CallbackHub.Storage;

namespace CallbackHub;

/// <summary>The composition root: everything is read from configuration (appsettings, environment, arguments).</summary>
public static class CallbackHubApp
{
    /// <summary>
    /// Runs the service until SIGTERM. A start that cannot succeed (wrong settings, a database that refuses us) ends
    /// with one sentence per problem on standard error and exit code 1: no stack trace, no half-started host.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        await using var app = Build(args);
        var problems = await SettingsProblemsAsync(app, args);
        if (problems.Count == 0)
        {
            problems = await app.Services.GetRequiredService<DatabaseInitializer>().PrepareAsync(CancellationToken.None);
        }

        if (problems.Count > 0)
        {
            await Console.Error.WriteLineAsync(StartupFailure.Describe(problems));
            return 1;
        }

        await app.RunAsync();
        return 0;
    }

    /// <summary>
    /// The settings' problems, all of them: a value that cannot be converted stops the binder at that key, so the check
    /// is repeated with such keys blanked until no new one turns up, and what the repetitions find is added.
    /// </summary>
    internal static async Task<IReadOnlyList<string>> SettingsProblemsAsync(WebApplication app, string[] args)
    {
        var (sentences, keys) = OptionsRegistration.SettingsProblems(app.Services);
        var problems = sentences.ToList();
        var unconvertible = keys.ToHashSet();
        for (var found = unconvertible.Count; found > 0;)
        {
            var without = unconvertible.Select(key => KeyValuePair.Create(key, (string?)null)).ToList();
            await using var again = Build(args, builder => builder.Configuration.AddInMemoryCollection(without));
            // A blanked key reads as its type's default: what is said about it again is not news.
            var (moreSentences, moreKeys) = OptionsRegistration.SettingsProblems(again.Services);
            problems.AddRange(moreSentences.Except(problems)
                .Where(problem => !unconvertible.Any(key => problem.Contains(key.Replace(":", "__", StringComparison.Ordinal), StringComparison.Ordinal))));
            found = moreKeys.Count(unconvertible.Add);
        }

        return problems;
    }

    /// <param name="configure">Lets tests and tools adjust the builder (configuration, services) before it is built.</param>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // appsettings.json is found beside the program, whatever the working directory.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var services = builder.Services;

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<CallbackHubMetrics>();
        services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemSentences.Fill);
        services.AddStorage();
        services.AddOutbox();
        services.AddGatewayClient();

        services.AddValidatedOptions<CallbackOptions>(CallbackOptions.Section, CallbackOptions.Validate);
        services.AddSingleton<PushReceiver>();
        services.AddSingleton<RefusalLimiter>();
        services.AddAgents();
        services.AddObservability();

        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapCallbackEndpoints();
        app.MapAgentEndpoints();
        app.MapObservability();
        return app;
    }
}
