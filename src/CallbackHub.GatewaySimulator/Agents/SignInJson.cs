using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CallbackHub.GatewaySimulator.Agents;

/// <summary>
/// How the gateway reads a sign-in body: field names case-sensitive, but scalars in either form, since
/// Huawei's own example sends numbers and booleans as strings (<c>"status":"4"</c>, <c>"releasephone":"false"</c>;
/// docs/gateway-protocol.md §1) — the gateway is a Java service whose JSON reader coerces such scalars.
/// </summary>
internal static class SignInJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        Converters = { new LenientBoolean(), new LenientString() },
    };

    /// <summary><c>true</c>/<c>false</c> as JSON booleans, as strings (any case), or as the numbers 0 and 1.</summary>
    private sealed class LenientBoolean : JsonConverter<bool>
    {
        public override bool Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType switch
            {
                JsonTokenType.True => true,
                JsonTokenType.False => false,
                JsonTokenType.String => reader.GetString() switch
                {
                    { } text when text.Equals("true", StringComparison.OrdinalIgnoreCase) => true,
                    { } text when text.Equals("false", StringComparison.OrdinalIgnoreCase) => false,
                    _ => throw new JsonException("expected true or false"),
                },
                JsonTokenType.Number when reader.TryGetInt32(out var number) && number is 0 or 1 => number == 1,
                _ => throw new JsonException("expected true or false"),
            };

        public override void Write(Utf8JsonWriter writer, bool value, JsonSerializerOptions options) => writer.WriteBooleanValue(value);
    }

    /// <summary>A string field sent as a number or boolean (<c>"phonenum":40038</c>) is read as its text.</summary>
    private sealed class LenientString : JsonConverter<string>
    {
        public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType switch
            {
                JsonTokenType.String => reader.GetString(),
                JsonTokenType.Number => Encoding.UTF8.GetString(reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan),
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                _ => throw new JsonException(string.Create(CultureInfo.InvariantCulture, $"expected a string, not {reader.TokenType}")),
            };

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
    }
}
