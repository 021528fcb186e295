using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>
/// Writes a test's CallbackHub warnings and errors (with their exceptions) to the test's output, which <c>dotnet test</c>
/// prints under a failed test: the console of the test host is not shown, so without this a failure that the service
/// logged the cause of shows only its symptom. Errors are always written; warnings (a refused push is one) only up to
/// <see cref="MaxWarnings"/>, so a flood test's output stays readable.
/// </summary>
internal sealed class TestOutputLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public const int MaxWarnings = 200;

    private int _warnings;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Write(string line) => output.WriteLine(line);

    private sealed class Logger(TestOutputLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel) || (logLevel == LogLevel.Warning && Interlocked.Increment(ref owner._warnings) > MaxWarnings))
            {
                return;
            }

            try
            {
                owner.Write($"[hub {DateTime.UtcNow:HH:mm:ss.fff}] {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : $" — {exception}")}");
            }
            catch (InvalidOperationException)
            {
                // The test is over (a background service logging on its way down): nowhere to write.
            }
        }
    }
}
