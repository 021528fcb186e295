using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace CallbackHub.Callbacks;

/// <summary>
/// Parses and validates a push body (docs/gateway-protocol.md §6). Strict where a mistake would store the wrong thing
/// (agent ids, event types, timestamps), lenient where the gateway's versions differ: <c>content</c> may be
/// any JSON value or absent (stored as null), an item's <c>workNo</c> may be absent (it is the batch's),
/// <c>eventGenTime</c> may be absent, a number or a numeric string. Whatever it accepts can be stored: the body is valid
/// UTF-8, event types are printable text, and content is what <see cref="StorableJson"/> lets through.
/// </summary>
internal static class PushParser
{
    public const int MaxEventTypeLength = 128;
    public const int MinAgentId = Agents.AgentIds.Min;
    public const int MaxAgentId = Agents.AgentIds.Max;

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };

    // eventGenTime is epoch milliseconds; anything outside these years is a broken clock or a wrong unit.
    private static readonly long MinGenTime = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
    private static readonly long MaxGenTime = new DateTimeOffset(2200, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    public static bool TryParse(ReadOnlyMemory<byte> body, out PushBatch batch, out PushRejection rejection)
    {
        batch = null!;
        // JSON text is UTF-8 (RFC 8259), and the parser only checks the bytes of what it decodes: a broken sequence in a name
        // nobody reads would otherwise pass.
        if (!Utf8.IsValid(body.Span))
        {
            rejection = PushRejection.BadRequest("The body is not valid UTF-8 (Content-Type says charset=UTF-8).");
            return false;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, DocumentOptions);
        }
        catch (JsonException e)
        {
            rejection = PushRejection.BadRequest($"The body is not valid JSON: {e.Message}");
            return false;
        }

        using (document)
        {
            string? error;
            try
            {
                error = TryRead(document.RootElement, out batch);
            }
            catch (InvalidOperationException e)
            {
                // Names are decoded to be compared: one holding an escaped lone surrogate cannot be (content's are normalised).
                error = $"The body holds a name that is not valid text: {e.Message}";
            }

            rejection = error is null ? null! : PushRejection.BadRequest(error);
            return error is null;
        }
    }

    public static bool IsValidAgentId(int agentId) => Agents.AgentIds.IsValid(agentId);

    private static string? TryRead(JsonElement root, out PushBatch batch)
    {
        batch = null!;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return "The body must be a JSON object with workNo and eventList.";
        }

        if (!root.TryGetProperty("workNo", out var workNoElement))
        {
            return "workNo is missing.";
        }

        if (!TryReadAgentId(workNoElement, out var agentId))
        {
            return $"workNo must be an agent id from {MinAgentId} to {MaxAgentId}.";
        }

        if (!root.TryGetProperty("eventList", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            return "eventList is missing or is not an array.";
        }

        if (list.GetArrayLength() == 0)
        {
            return "eventList is empty.";
        }

        var events = new PushedEvent[list.GetArrayLength()];
        var index = 0;
        foreach (var item in list.EnumerateArray())
        {
            var error = TryReadEvent(item, agentId, index, out events[index]);
            if (error is not null)
            {
                return error;
            }

            index++;
        }

        batch = new PushBatch(agentId, events, PrefixHashes(agentId, events));
        return null;
    }

    private static string? TryReadEvent(JsonElement item, int agentId, int index, out PushedEvent pushed)
    {
        pushed = null!;
        if (item.ValueKind != JsonValueKind.Object)
        {
            return $"eventList[{index}] must be an object.";
        }

        if (!item.TryGetProperty("eventType", out var type) || type.ValueKind != JsonValueKind.String)
        {
            return $"eventList[{index}].eventType is missing or is not a string of 1 to {MaxEventTypeLength} characters.";
        }

        if (TryGetText(type) is not { } eventType)
        {
            return $"eventList[{index}].eventType is not valid text: it holds an escaped lone UTF-16 surrogate.";
        }

        if (eventType.Length is 0 or > MaxEventTypeLength)
        {
            return $"eventList[{index}].eventType is missing or is not a string of 1 to {MaxEventTypeLength} characters.";
        }

        // It names the event in routing keys and logs: printable text only (a NUL cannot even be stored).
        if (eventType.Any(char.IsControl))
        {
            return $"eventList[{index}].eventType must be printable text: it holds a control character.";
        }

        if (item.TryGetProperty("workNo", out var itemWorkNo)
            && (!TryReadAgentId(itemWorkNo, out var itemAgentId) || itemAgentId != agentId))
        {
            return $"eventList[{index}].workNo does not match the batch's workNo {agentId}: a push carries one agent's events.";
        }

        DateTimeOffset? generatedAt = null;
        if (item.TryGetProperty("eventGenTime", out var gen) && gen.ValueKind != JsonValueKind.Null)
        {
            if (!TryReadEpochMillis(gen, out var millis))
            {
                return $"eventList[{index}].eventGenTime must be epoch milliseconds between the years 2000 and 2200.";
            }

            generatedAt = DateTimeOffset.FromUnixTimeMilliseconds(millis);
        }

        var content = "null";
        if (item.TryGetProperty("content", out var c))
        {
            content = StorableJson.Normalise(JsonMarshal.GetRawUtf8Value(c), out var unstorable)!;
            if (unstorable is not null)
            {
                return $"eventList[{index}].content cannot be stored: {unstorable}";
            }
        }

        pushed = new PushedEvent(eventType, generatedAt, content);
        return null;
    }

    /// <summary>The string's text, or null where it is not text (an escaped lone surrogate cannot be decoded).</summary>
    private static string? TryGetText(JsonElement element)
    {
        try
        {
            return element.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static bool TryReadAgentId(JsonElement element, out int agentId)
    {
        agentId = 0;
        var parsed = element.ValueKind switch
        {
            JsonValueKind.String => int.TryParse(TryGetText(element), System.Globalization.NumberStyles.None, null, out agentId),
            JsonValueKind.Number => element.TryGetInt32(out agentId),
            _ => false,
        };
        return parsed && IsValidAgentId(agentId);
    }

    private static bool TryReadEpochMillis(JsonElement element, out long millis)
    {
        millis = 0;
        var parsed = element.ValueKind switch
        {
            JsonValueKind.Number => element.TryGetInt64(out millis),
            JsonValueKind.String => long.TryParse(TryGetText(element), System.Globalization.NumberStyles.None, null, out millis),
            _ => false,
        };
        return parsed && millis >= MinGenTime && millis < MaxGenTime;
    }

    /// <summary>
    /// What identifies a re-send, for each prefix of the batch: entry k − 1 is the hash of the agent and of the first k
    /// events' type, generation time and content, in order — a chain, so entry k − 1 of a retry that appended events to a
    /// batch equals the last entry of that batch. Headers (Guid, token) are left out on purpose: the gateway may rotate
    /// them between retries.
    /// </summary>
    private static byte[][] PrefixHashes(int agentId, PushedEvent[] events)
    {
        var hashes = new byte[events.Length][];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[8];
        BitConverter.TryWriteBytes(number, (long)agentId);
        hash.AppendData(number);
        for (var i = 0; i < events.Length; i++)
        {
            var e = events[i];
            BitConverter.TryWriteBytes(number, e.GeneratedAt?.ToUnixTimeMilliseconds() ?? long.MinValue);
            hash.AppendData(number);
            AppendString(hash, e.EventType);
            AppendString(hash, e.ContentJson);
            hashes[i] = hash.GetCurrentHash();
        }

        return hashes;
    }

    private static void AppendString(IncrementalHash hash, string value)
    {
        // Length-prefixed so that no two different lists of strings hash the same bytes.
        Span<byte> length = stackalloc byte[4];
        var bytes = Encoding.UTF8.GetBytes(value);
        BitConverter.TryWriteBytes(length, bytes.Length);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }
}
