using System.Buffers;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using CallbackHub.Contracts;

namespace CallbackHub.Outbox;

/// <summary>
/// Writes <see cref="AgentEventReceived"/> in MassTransit's JSON envelope (<c>application/vnd.masstransit+json</c>), the
/// format MassTransit consumers read without configuration. The outbox publishes with RabbitMQ.Client directly (it
/// needs pipelined confirms with a per-agent order on one channel, which MassTransit's publish does not give), so the
/// envelope is written here: message id, conversation id, addresses, the message type URN, the message, sent time, host.
/// </summary>
internal sealed class MessageEnvelope
{
    public const string ContentType = "application/vnd.masstransit+json";

    private static readonly string MessageTypeUrn = $"urn:message:{typeof(AgentEventReceived).Namespace}:{nameof(AgentEventReceived)}";

    private readonly string _sourceAddress;
    private readonly string _destinationAddress;
    private readonly (string Machine, string Process, int ProcessId, string Assembly, string Version, string Framework, string Os) _host;

    public MessageEnvelope(string host, string virtualHost)
    {
        var vhost = virtualHost is "/" or "" ? "" : "/" + Uri.EscapeDataString(virtualHost);
        _sourceAddress = $"rabbitmq://{host}{vhost}/callbackhub-outbox";
        _destinationAddress = $"rabbitmq://{host}{vhost}/{AgentEventTopology.ExchangeName}?type=topic";
        var assembly = Assembly.GetEntryAssembly() ?? typeof(MessageEnvelope).Assembly;
        using var process = Process.GetCurrentProcess();
        _host = (Environment.MachineName, process.ProcessName, Environment.ProcessId, assembly.GetName().Name ?? "CallbackHub",
            assembly.GetName().Version?.ToString() ?? "", RuntimeInformation.FrameworkDescription, RuntimeInformation.OSDescription);
    }

    // As MassTransit's own serializer writes it: a quote in the content is \" and other text stays UTF-8, not \u0022 and
    // \uXXXX (the default escapes for text meant for HTML), which made a message about a tenth longer.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // One buffer and writer per thread, reused: only the finished body is allocated.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public byte[] Write(OutboxEvent e, DateTimeOffset sentTime)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(2048);
        buffer.ResetWrittenCount();
        var json = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        json.Reset(buffer);
        json.WriteStartObject();
        json.WriteString("messageId", e.EventId);
        json.WriteString("conversationId", e.EventId);
        json.WriteString("sourceAddress", _sourceAddress);
        json.WriteString("destinationAddress", _destinationAddress);
        json.WriteStartArray("messageType");
        json.WriteStringValue(MessageTypeUrn);
        json.WriteEndArray();
        json.WriteStartObject("message");
        json.WriteString("eventId", e.EventId);
        json.WriteNumber("agentId", e.AgentId);
        json.WriteString("eventType", e.EventType);
        json.WriteNumber("sequence", e.Sequence);
        json.WriteString("content", e.Content);
        if (e.GeneratedAt is { } generated)
        {
            json.WriteString("generatedAt", generated);
        }
        else
        {
            json.WriteNull("generatedAt");
        }

        json.WriteString("receivedAt", e.ReceivedAt);
        json.WriteEndObject();
        json.WriteString("sentTime", sentTime);
        json.WriteStartObject("headers");
        json.WriteEndObject();
        json.WriteStartObject("host");
        json.WriteString("machineName", _host.Machine);
        json.WriteString("processName", _host.Process);
        json.WriteNumber("processId", _host.ProcessId);
        json.WriteString("assembly", _host.Assembly);
        json.WriteString("assemblyVersion", _host.Version);
        json.WriteString("frameworkVersion", _host.Framework);
        json.WriteString("operatingSystemVersion", _host.Os);
        json.WriteEndObject();
        json.WriteEndObject();
        json.Flush();
        var body = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity > 64 * 1024)
        {
            // A rare huge event: its buffer is not kept for the thread's life.
            (t_buffer, t_writer) = (null, null);
        }

        return body;
    }
}

/// <summary>One stored event as the outbox reads it.</summary>
internal sealed record OutboxEvent(
    Guid EventId, int AgentId, long Sequence, string EventType, string Content, DateTimeOffset? GeneratedAt, DateTimeOffset ReceivedAt);
