using Microsoft.Extensions.Time.Testing;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>Waits for work the simulator does on other threads (HTTP pushes) without fixed sleeps.</summary>
internal static class Eventually
{
    public static async Task<bool> TrueAsync(Func<bool> condition, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(10);
        }

        return true;
    }

    public static async Task HoldsAsync(Func<bool> condition, string what)
    {
        Assert.True(await TrueAsync(condition), $"Timed out waiting for {what}");
    }

    /// <summary>
    /// Advances the fake clock step by step until <paramref name="condition"/> holds, giving the simulator's
    /// threads a moment after each step (a retry timer may be registered just after a step).
    /// </summary>
    public static async Task AdvanceUntilAsync(
        this FakeTimeProvider time, Func<bool> condition, TimeSpan step, string what, int maxSteps = 50, int settleMilliseconds = 300)
    {
        for (var i = 0; i < maxSteps; i++)
        {
            if (await TrueAsync(condition, TimeSpan.FromMilliseconds(settleMilliseconds)))
            {
                return;
            }

            time.Advance(step);
        }

        Assert.True(condition(), $"Fake clock advanced {maxSteps} x {step} without {what}");
    }
}
