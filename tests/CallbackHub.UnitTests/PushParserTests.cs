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

public sealed class PushParserHardeningTests
{
    private static (bool Ok, PushBatch Batch, PushRejection Rejection) Parse(byte[] body)
    {
        var ok = PushParser.TryParse(body, out var batch, out var rejection);
        return (ok, batch, rejection);
    }

    private static (bool Ok, PushBatch Batch, PushRejection Rejection) Parse(string json) => Parse(Encoding.UTF8.GetBytes(json));

    private static string WithContent(string content) => $$"""{"workNo":"1001","eventList":[{"eventType":"A","content":{{content}}}]}""";

    [Fact]
    public void A_body_that_is_not_valid_UTF8_is_refused_even_where_the_bad_bytes_sit_in_a_name_nobody_reads()
    {
        var body = Encoding.UTF8.GetBytes("""{"workNo":"1001","eventList":[{"eventType":"A","xx":1}]}""");
        var at = Array.IndexOf(body, (byte)'x');
        body[at] = 0xC3; // a lead byte followed by 'x': not UTF-8

        var (ok, _, rejection) = Parse(body);

        Assert.False(ok);
        Assert.Equal(400, rejection.StatusCode);
        Assert.Contains("not valid UTF-8", rejection.Message);
    }

    [Theory]
    [InlineData("A\\u0000", "control character")]
    [InlineData("A\\u0007B", "control character")]
    [InlineData("A\\ud800", "lone UTF-16 surrogate")]
    [InlineData("\\udc00", "lone UTF-16 surrogate")]
    public void An_event_type_that_is_not_printable_text_is_refused_with_a_sentence(string eventType, string expected)
    {
        var (ok, _, rejection) = Parse($$"""{"workNo":"1001","eventList":[{"eventType":"{{eventType}}"}]}""");

        Assert.False(ok);
        Assert.Equal(400, rejection.StatusCode);
        Assert.Contains(expected, rejection.Message);
    }

    [Theory]
    [InlineData("\"a\\ud800b\"", "\"a\\ufffdb\"")]
    [InlineData("\"a\\udc00\"", "\"a\\ufffd\"")]
    [InlineData("\"\\ud800\\ud800\\udc00\"", "\"\\ufffd\\ud800\\udc00\"")]
    [InlineData("{\"\\u0000\":[\"x\\u0000\"]}", "{\"\\ufffd\":[\"x\\ufffd\"]}")]
    [InlineData("\"\\ud83d\\ude00 \\\\u0000 \\\\ud800\"", "\"\\ud83d\\ude00 \\\\u0000 \\\\ud800\"")]
    [InlineData("\"\\u00e9\\n\"", "\"\\u00e9\\n\"")]
    public void Content_jsonb_cannot_hold_is_normalised_to_the_replacement_character_and_nothing_else_changes(string content, string stored)
    {
        var (ok, batch, _) = Parse(WithContent(content));

        Assert.True(ok);
        Assert.Equal(stored, batch.Events[0].ContentJson);
    }

    [Theory]
    [InlineData("1e131072")]
    [InlineData("-1e-16384")]
    [InlineData("0e-20000")]
    [InlineData("1e99999999999999999999")]
    [InlineData("{\"a\":[1,2,1E200000]}")]
    public void A_number_numeric_cannot_hold_is_refused_with_a_sentence(string content)
    {
        var (ok, _, rejection) = Parse(WithContent(content));

        Assert.False(ok);
        Assert.Equal(400, rejection.StatusCode);
        Assert.Contains("number PostgreSQL cannot store", rejection.Message);
    }

    [Theory]
    [InlineData("1e131071")]
    [InlineData("1.5e-16382")]
    [InlineData("0.001e131073")]
    [InlineData("0e1000000")]
    [InlineData("-12345.678e-3")]
    public void Numbers_numeric_holds_are_kept_as_sent(string content)
    {
        var (ok, batch, _) = Parse(WithContent(content));

        Assert.True(ok);
        Assert.Equal(content, batch.Events[0].ContentJson);
    }

    [Fact]
    public void The_fingerprint_of_a_batch_is_the_fingerprint_of_the_same_events_at_the_start_of_a_longer_batch()
    {
        var first = Parse("""{"workNo":"1001","eventList":[{"eventType":"A","content":1},{"eventType":"B","content":null}]}""").Batch;
        var retry = Parse("""{"workNo":"1001","eventList":[{"eventType":"A","content":1},{"eventType":"B","content":null},{"eventType":"C"}]}""").Batch;
        var other = Parse("""{"workNo":"1001","eventList":[{"eventType":"B","content":null},{"eventType":"A","content":1},{"eventType":"C"}]}""").Batch;

        Assert.Equal(first.Fingerprint, retry.PrefixHashes[1]);
        Assert.Equal(first.PrefixHashes[0], retry.PrefixHashes[0]);
        Assert.NotEqual(first.Fingerprint, retry.Fingerprint);
        Assert.NotEqual(first.Fingerprint, other.PrefixHashes[1]);
    }
}

public sealed class PushParserNamesTests
{
    [Theory]
    [InlineData("""{"workNo":"1001","eventList":[{"\udfffeventType":"A","eventType":"B"}]}""")]
    [InlineData("""{"workNo":"1001","eventList":[{"eventType":"A","\ud800orkNo":"1001"}]}""")]
    public void A_name_with_an_escaped_lone_surrogate_where_names_are_looked_up_is_refused_not_thrown(string json)
    {
        var ok = PushParser.TryParse(Encoding.UTF8.GetBytes(json), out _, out var rejection);

        Assert.False(ok);
        Assert.Equal(400, rejection.StatusCode);
        Assert.Contains("not valid text", rejection.Message);
    }
}
