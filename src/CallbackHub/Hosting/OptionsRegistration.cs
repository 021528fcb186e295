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
        return services.AddOptions<T>().ValidateOnStart();
    }

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
