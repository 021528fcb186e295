using Microsoft.Extensions.Options;

namespace CallbackHub.Hosting;

/// <summary>
/// Binds an options class to its configuration section and checks it when the service starts, so a wrong
/// setting stops the service at boot with a sentence naming the key — never at the first request.
/// </summary>
internal static class OptionsRegistration
{
    public static OptionsBuilder<T> AddValidatedOptions<T>(
        this IServiceCollection services, string section, Func<T, IEnumerable<string>> validate)
        where T : class =>
        services.AddValidatedOptions(validate).BindConfiguration(section);

    /// <summary>Validated options whose binding the caller configures.</summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, Func<T, IEnumerable<string>> validate)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(new DelegateValidator<T>(validate));
        services.AddSingleton(new SettingsCheck(ProblemsOf<T>));
        return services.AddOptions<T>().ValidateOnStart();
    }

    /// <summary>
    /// Every sentence about a wrong setting, from every options class, in one pass. A value that cannot be converted
    /// hides the rest of its class from the binder: <c>Unconvertible</c> names such keys (<c>Gateway:Timeout</c>), so
    /// that a caller can check again without them.
    /// </summary>
    public static (IReadOnlyList<string> Sentences, IReadOnlyList<string> Unconvertible) SettingsProblems(IServiceProvider services)
    {
        var problems = services.GetServices<SettingsCheck>().SelectMany(check => check.Problems(services)).ToList();
        return (problems.Select(p => p.Sentence).Distinct().ToList(), problems.Select(p => p.Key).OfType<string>().Distinct().ToList());
    }

    private static IEnumerable<Problem> ProblemsOf<T>(IServiceProvider services)
        where T : class
    {
        try
        {
            _ = services.GetRequiredService<IOptions<T>>().Value;
            return [];
        }
        catch (OptionsValidationException e)
        {
            return e.Failures.Select(failure => new Problem(failure, null));
        }
        catch (InvalidOperationException e) when (e.InnerException is FormatException or OverflowException or ArgumentException)
        {
            return [ConversionProblem(e.Message)];
        }
    }

    /// <summary>The binder's "Failed to convert configuration value 'x' at 'Gateway:Timeout' to type 'System.TimeSpan'.", keyed as in the environment.</summary>
    private static Problem ConversionProblem(string message)
    {
        var match = System.Text.RegularExpressions.Regex.Match(message, "^Failed to convert configuration value '(?<value>.*)' at '(?<key>[^']+)' to type '(?<type>[^']+)'");
        if (!match.Success)
        {
            return new Problem(message, null);
        }

        var type = match.Groups["type"].Value;
        var expected = type switch
        {
            "System.TimeSpan" => "a duration such as 00:00:30",
            "System.Int32" or "System.Int64" => "a whole number",
            "System.Boolean" => "true or false",
            _ => $"a value of type {type[(type.LastIndexOf('.') + 1)..]}",
        };
        var key = match.Groups["key"].Value;
        return new Problem($"{key.Replace(":", "__", StringComparison.Ordinal)} must be {expected}; '{match.Groups["value"].Value}' is not.", key);
    }

    private sealed record Problem(string Sentence, string? Key);

    private sealed record SettingsCheck(Func<IServiceProvider, IEnumerable<Problem>> Problems);

    private sealed class DelegateValidator<T>(Func<T, IEnumerable<string>> validate) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var failures = validate(options).ToList();
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }
}
