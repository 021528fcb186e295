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
    [InlineData("Simulator:Accounts:1001:Skills:0", "0", "Simulator:Accounts:1001:Skills")]
    [InlineData("Simulator:AnswerLatency", "-00:00:01", "Simulator:AnswerLatency")]
    [InlineData("Simulator:HeartbeatTimeout", "00:00:00", "Simulator:HeartbeatTimeout")]
    [InlineData("Simulator:HeartbeatTimesKept", "-1", "Simulator:HeartbeatTimesKept")]
    public async Task A_wrong_setting_fails_the_start_naming_its_key(string key, string value, string named)
    {
        var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => SimulatorHost.StartAsync(new() { [key] = value }));

        Assert.Contains(named, exception.Message, StringComparison.Ordinal);
    }
}
