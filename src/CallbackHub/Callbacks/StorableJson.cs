using System.Text;
using System.Text.Json;

namespace CallbackHub.Callbacks;

/// <summary>
/// Makes an event's <c>content</c> (already valid JSON in valid UTF-8) something PostgreSQL's <c>jsonb</c> accepts, so that
/// a push is either stored or refused here with a sentence — never failed by the database, which would be answered 503
/// and retried by the gateway for nothing.
/// <list type="bullet">
/// <item>Normalised (kept, one character replaced): an escaped NUL (<c>\u0000</c>) and an escaped lone UTF-16 surrogate
/// (<c>\ud800</c> with no partner) become U+FFFD, the replacement character — what any UTF-8 decoder makes of a broken
/// sequence. jsonb cannot hold either, and refusing would lose the whole batch for one unprintable character.</item>
/// <item>Refused: a number outside what PostgreSQL's <c>numeric</c> holds (more than 131,072 digits before the decimal
/// point or 16,383 after it, e.g. <c>1e200000</c>). Changing a number's value or type would change what consumers read.</item>
/// </list>
/// </summary>
internal static class StorableJson
{
    // PostgreSQL's numeric: NUMERIC_WEIGHT_MAX decimal digits before the point (131,072), NUMERIC_DSCALE_MAX after it.
    public const int MaxIntegerDigits = 131_072;
    public const int MaxFractionDigits = 16_383;

    private const string Replacement = "\\ufffd";

    /// <summary>The content as it is to be stored, or null with <paramref name="error"/> saying why it cannot be.</summary>
    public static string? Normalise(ReadOnlySpan<byte> raw, out string? error)
    {
        error = null;
        var reader = new Utf8JsonReader(raw, new JsonReaderOptions { MaxDepth = 64 });
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.Number && !IsStorableNumber(reader.ValueSpan))
            {
                error = $"it holds a number PostgreSQL cannot store ({Excerpt(reader.ValueSpan)}: at most {MaxIntegerDigits} digits before the decimal point and {MaxFractionDigits} after it).";
                return null;
            }
        }

        var text = Encoding.UTF8.GetString(raw);
        return text.Contains('\\', StringComparison.Ordinal) ? ReplaceUnstorableEscapes(text) : text;
    }

    /// <summary>
    /// Whether <c>numeric</c> holds the literal: its digits before the point (with the exponent applied) and its scale
    /// after it. Zero needs no digits before the point, but its scale still counts (<c>0e-20000</c> is refused).
    /// </summary>
    internal static bool IsStorableNumber(ReadOnlySpan<byte> literal)
    {
        var i = literal.Length > 0 && literal[0] == (byte)'-' ? 1 : 0;
        long integerDigits = 0, fractionDigits = 0, fractionLeadingZeros = 0;
        var leadingZeros = true;
        for (; i < literal.Length && literal[i] is >= (byte)'0' and <= (byte)'9'; i++)
        {
            leadingZeros &= literal[i] == (byte)'0';
            integerDigits += leadingZeros ? 0 : 1;
        }

        var nonZero = integerDigits > 0;
        if (i < literal.Length && literal[i] == (byte)'.')
        {
            for (i++; i < literal.Length && literal[i] is >= (byte)'0' and <= (byte)'9'; i++)
            {
                fractionDigits++;
                fractionLeadingZeros += nonZero || literal[i] != (byte)'0' ? 0 : 1;
                nonZero |= literal[i] != (byte)'0';
            }
        }

        long exponent = 0;
        if (i < literal.Length && literal[i] is (byte)'e' or (byte)'E')
        {
            i++;
            var negative = i < literal.Length && literal[i] == (byte)'-';
            if (i < literal.Length && literal[i] is (byte)'-' or (byte)'+')
            {
                i++;
            }

            for (; i < literal.Length; i++)
            {
                // Saturates: PostgreSQL refuses any exponent from INT_MAX / 2 on, even for zero.
                exponent = Math.Min(exponent * 10 + (literal[i] - (byte)'0'), int.MaxValue);
            }

            exponent = negative ? -exponent : exponent;
        }

        var scale = Math.Max(0, fractionDigits - exponent);
        // Digits before the point: the integer part's, or minus the fraction's leading zeros (0.001e5 has 3); zero has none.
        var weight = (integerDigits > 0 ? integerDigits : -fractionLeadingZeros) + exponent;
        return Math.Abs(exponent) < int.MaxValue / 2 && scale <= MaxFractionDigits && (!nonZero || weight <= MaxIntegerDigits);
    }

    /// <summary>
    /// Replaces <c>\u0000</c> and each <c>\u</c> surrogate escape without its partner by <c>\ufffd</c>; returns the text
    /// itself when there is none. In valid JSON a backslash only ever stands inside a string or a name, so scanning the
    /// whole text escape by escape never misreads anything.
    /// </summary>
    private static string ReplaceUnstorableEscapes(string json)
    {
        StringBuilder? output = null;
        var copied = 0;
        for (var i = 0; i < json.Length - 1; i++)
        {
            if (json[i] != '\\')
            {
                continue;
            }

            if (json[i + 1] != 'u')
            {
                i++;
                continue;
            }

            var code = Hex(json.AsSpan(i + 2, 4));
            if (code is >= 0xD800 and <= 0xDBFF && i + 11 < json.Length && json[i + 6] == '\\' && json[i + 7] == 'u'
                && Hex(json.AsSpan(i + 8, 4)) is >= 0xDC00 and <= 0xDFFF)
            {
                i += 11; // a whole surrogate pair
                continue;
            }

            if (code == 0 || code is >= 0xD800 and <= 0xDFFF)
            {
                output ??= new StringBuilder(json.Length);
                output.Append(json, copied, i - copied).Append(Replacement);
                copied = i + 6;
            }

            i += 5;
        }

        return output is null ? json : output.Append(json, copied, json.Length - copied).ToString();
    }

    private static int Hex(ReadOnlySpan<char> digits) => int.Parse(digits, System.Globalization.NumberStyles.AllowHexSpecifier, null);

    private static string Excerpt(ReadOnlySpan<byte> literal) =>
        literal.Length <= 24 ? Encoding.UTF8.GetString(literal) : $"{Encoding.UTF8.GetString(literal[..20])}… ({literal.Length} characters)";
}
