using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>Writes push bodies byte for byte in the gateway's shape and property order.</summary>
internal static class PushBody
{
    // The gateway (Java) does not escape '+' or non-ASCII characters the way System.Text.Json does by default.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary><c>{"workNo":"…","eventList":[{"eventType":"…","workNo":"…","eventGenTime":…,"content":…}]}</c>.</summary>
    public static string Write(string workNo, IEnumerable<SimulatedEvent> events)
    {
        return Serialize(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("workNo", workNo);
            writer.WriteStartArray("eventList");
            foreach (var e in events)
            {
                WriteEvent(writer, workNo, e);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        });
    }

    /// <summary>The poll-mode answer: <c>{"message":"","retcode":"0","event":{…}|null}</c>.</summary>
    public static string WritePollAnswer(string workNo, SimulatedEvent? e)
    {
        return Serialize(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("message", "");
            writer.WriteString("retcode", "0");
            writer.WritePropertyName("event");
            if (e is null)
            {
                writer.WriteNullValue();
            }
            else
            {
                WriteEvent(writer, workNo, e);
            }

            writer.WriteEndObject();
        });
    }

    private static void WriteEvent(Utf8JsonWriter writer, string workNo, SimulatedEvent e)
    {
        writer.WriteStartObject();
        writer.WriteString("eventType", e.EventType);
        writer.WriteString("workNo", workNo);
        if (e.EventGenTime is { } genTime)
        {
            writer.WriteNumber("eventGenTime", genTime);
        }

        writer.WritePropertyName("content");
        if (e.Content is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } content)
        {
            content.WriteTo(writer);
        }
        else
        {
            writer.WriteNullValue();
        }

        writer.WriteEndObject();
    }

    private static string Serialize(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
