using System.Text;
using CallbackHub.Callbacks;

namespace CallbackHub.UnitTests;

public sealed class PushParserTests
{
    private static (bool Ok, PushBatch Batch, PushRejection Rejection) Parse(string json)
    {
        var ok = PushParser.TryParse(Encoding.UTF8.GetBytes(json), out var batch, out var rejection);
        return (ok, batch, rejection);
    }

    [Fact]
    public void Parses_the_documented_push_shape()
    {
        var (ok, batch, _) = Parse("""
            {"workNo":"49999","eventList":[
               {"eventType":"AgentOther_InService","workNo":"49999","content":null},
               {"eventType":"AgentState_Ready","workNo":"49999","eventGenTime":1784529722590,"content":null},
               {"eventType":"AgentEvent_Call_Release","workNo":"49999","content":"1456403549-15"},
               {"eventType":"AgentState_SetNotReady_Success","workNo":"49999","content":{"reason":"200","result":0}}]}
            """);

        Assert.True(ok);
        Assert.Equal(49999, batch.AgentId);
        Assert.Equal(["AgentOther_InService", "AgentState_Ready", "AgentEvent_Call_Release", "AgentState_SetNotReady_Success"],
            batch.Events.Select(e => e.EventType));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1784529722590), batch.Events[1].GeneratedAt);
        Assert.Null(batch.Events[0].GeneratedAt);
        Assert.Equal("null", batch.Events[0].ContentJson);
        Assert.Equal("\"1456403549-15\"", batch.Events[2].ContentJson);
        Assert.Equal("""{"reason":"200","result":0}""", batch.Events[3].ContentJson);
    }

    [Fact]
    public void Is_lenient_where_gateway_versions_differ()
    {
        var (ok, batch, _) = Parse("""{"workNo":1001,"eventList":[{"eventType":"AgentState_Ready","eventGenTime":"1784529722590"}]}""");

        Assert.True(ok);
        Assert.Equal(1001, batch.AgentId);
        Assert.Equal("null", batch.Events[0].ContentJson);
        Assert.Equal(1784529722590, batch.Events[0].GeneratedAt!.Value.ToUnixTimeMilliseconds());
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("null", "JSON object")]
    [InlineData("""{"eventList":[{"eventType":"A"}]}""", "workNo is missing")]
    [InlineData("""{"workNo":"100","eventList":[{"eventType":"A"}]}""", "101 to 999999")]
    [InlineData("""{"workNo":"1001x","eventList":[{"eventType":"A"}]}""", "101 to 999999")]
    [InlineData("""{"workNo":"1001","eventList":{}}""", "not an array")]
    [InlineData("""{"workNo":"1001","eventList":[]}""", "eventList is empty")]
    [InlineData("""{"workNo":"1001","eventList":[1]}""", "eventList[0] must be an object")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":""}]}""", "eventList[0].eventType")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":7}]}""", "eventList[0].eventType")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","workNo":"1002"}]}""", "eventList[0].workNo")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","eventGenTime":12}]}""", "eventGenTime")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","eventGenTime":true}]}""", "eventGenTime")]
    public void Rejects_malformed_pushes_with_a_sentence_saying_what_is_wrong(string json, string expected)
    {
        var (ok, _, rejection) = Parse(json);

        Assert.False(ok);
        Assert.Equal(400, rejection.StatusCode);
        Assert.Equal("100-001", rejection.Retcode);
        Assert.Contains(expected, rejection.Message);
    }

    [Fact]
    public void An_identical_batch_has_the_same_fingerprint_whatever_its_formatting()
    {
        var a = Parse("""{"workNo":"1001","eventList":[{"eventType":"A","workNo":"1001","content":{"x":1}}]}""").Batch;
        var b = Parse("""{ "eventList" : [ {"workNo":"1001", "eventType":"A","content":{"x":1}} ], "workNo":"1001" }""").Batch;

        Assert.Equal(a.Fingerprint, b.Fingerprint);
    }

    [Theory]
    [InlineData("""{"workNo":"1002","eventList":[{"eventType":"A","content":{"x":1}}]}""")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"B","content":{"x":1}}]}""")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","content":{"x":2}}]}""")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","content":{"x":1},"eventGenTime":1784529722590}]}""")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","content":{"x":1}},{"eventType":"A","content":{"x":1}}]}""")]
    public void Any_difference_in_agent_type_content_time_or_count_changes_the_fingerprint(string other)
    {
        var a = Parse("""{"workNo":"1001","eventList":[{"eventType":"A","content":{"x":1}}]}""").Batch;

        Assert.NotEqual(a.Fingerprint, Parse(other).Batch.Fingerprint);
    }

    [Fact]
    public void A_NUL_character_in_content_is_replaced_rather_than_making_the_event_unstorable()
    {
        var (ok, batch, _) = Parse("""{"workNo":"1001","eventList":[{"eventType":"A","content":"a\u0000b"}]}""");

        Assert.True(ok);
        Assert.Equal("\"a\\ufffdb\"", batch.Events[0].ContentJson);
    }
}
