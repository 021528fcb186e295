using CallbackHub.Gateway;

namespace CallbackHub.UnitTests;

public sealed class GatewayClientTests
{
    [Fact]
    public void Set_GUID_wins_over_Guid_and_only_the_value_after_JSESSIONID_is_kept()
    {
        using var response = new HttpResponseMessage();
        response.Headers.TryAddWithoutValidation("Guid", "old");
        response.Headers.TryAddWithoutValidation("Set-GUID", "JSESSIONID=279fe2a0f5.AgentGateway0");

        Assert.Equal("279fe2a0f5.AgentGateway0", GatewayClient.ReadGuid(response));
    }

    [Fact]
    public void Gateway_answers_are_read_with_retcode_message_and_result()
    {
        var answer = GatewayAnswer.Parse("""{"message":"success","retcode":"0","result":{"vdnid":1,"workno":"1001"}}""", "g");

        Assert.True(answer.Succeeded);
        Assert.Equal("""{"vdnid":1,"workno":"1001"}""", answer.ResultJson);
        Assert.False(GatewayAnswer.Parse("""{"message":"wrong","retcode":"100-004"}""", null).Succeeded);
    }
}
