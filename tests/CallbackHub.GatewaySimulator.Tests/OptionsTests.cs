using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator.Tests;

public sealed class OptionsTests
{
    [Theory]
    [InlineData("Simulator:PushRetryInterval", "00:00:00", "Simulator:PushRetryInterval")]
    [InlineData("Simulator:MaxEventsPerPush", "0", "Simulator:MaxEventsPerPush")]
    [InlineData("Simulator:TrustedCaFile", "/nonexistent/ca.pem", "Simulator:TrustedCaFile")]
    [InlineData("Simulator:Accounts:99:Locked", "true", "Simulator:Accounts:99")]
    [InlineData("Simulator:ServerName", "bad name", "Simulator:ServerName")]
    public async Task A_wrong_setting_fails_the_start_naming_its_key(string key, string value, string named)
    {
        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => SimulatorHost.StartAsync(new() { [key] = value }));

        Assert.Contains(named, exception.Message, StringComparison.Ordinal);
    }
}
