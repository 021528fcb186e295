using System.Text;
using System.Text.Json;
using CallbackHub.Outbox;

namespace CallbackHub.UnitTests;

/// <summary>The outbox writes each event in MassTransit's envelope, escaped as MassTransit escapes, one body per event.</summary>
public sealed class MessageEnvelopeTests
{
    [Fact]
    public void Content_keeps_its_quotes_and_text_readable_and_every_body_stands_alone()
    {
        var envelope = new MessageEnvelope("rabbit", "callbackhub");
        var ringing = new OutboxEvent(Guid.CreateVersion7(), 1001, 1, "AgentEvent_Ringing",
            """{"caller":"13800138000","name":"张伟 <VIP>"}""", DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_000),
            DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_123));
        var huge = ringing with { Sequence = 2, Content = $"\"{new string('x', 200_000)}\"" };
        var ready = ringing with { Sequence = 3, EventType = "AgentState_Ready", Content = "null", GeneratedAt = null };

        var first = envelope.Write(ringing, DateTimeOffset.UnixEpoch);
        var second = envelope.Write(huge, DateTimeOffset.UnixEpoch);
        var third = envelope.Write(ready, DateTimeOffset.UnixEpoch);

        var text = Encoding.UTF8.GetString(first);
        Assert.Contains("\\\"name\\\":\\\"张伟 <VIP>\\\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u0022", text, StringComparison.Ordinal);

        // Written one after another on one thread (one reused buffer), each body is its own event, whole.
        Assert.Equal([(1L, ringing.Content), (2L, huge.Content), (3L, "null")], new[] { first, second, third }.Select(Read));
        using var last = JsonDocument.Parse(third);
        Assert.Equal(JsonValueKind.Null, last.RootElement.GetProperty("message").GetProperty("generatedAt").ValueKind);
        Assert.Equal("AgentState_Ready", last.RootElement.GetProperty("message").GetProperty("eventType").GetString());
    }

    private static (long Sequence, string Content) Read(byte[] body)
    {
        using var document = JsonDocument.Parse(body);
        var message = document.RootElement.GetProperty("message");
        return (message.GetProperty("sequence").GetInt64(), message.GetProperty("content").GetString()!);
    }
}
