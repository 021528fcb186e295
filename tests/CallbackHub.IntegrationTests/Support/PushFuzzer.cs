using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CallbackHub.IntegrationTests.Support;

/// <summary>
/// Makes pushes for the webhook fuzz test: well-formed ones (several agents, every kind of content), and the same mutated
/// the ways input goes wrong — flipped, cut and inserted bytes, swapped types, deep nesting, NULs and lone surrogates
/// (escaped and raw), huge values, wrong, missing and other agents' tokens, odd content types — plus the gateway's own
/// retries (the last batch again, or with newer events appended). Seeded: a failure names the seed that repeats it.
/// </summary>
internal sealed class PushFuzzer(int seed, IReadOnlyDictionary<int, string> tokens)
{
    private static readonly string[] EventTypes =
    [
        "AgentState_Ready", "AgentState_Busy", "AgentEvent_Ringing", "AgentEvent_Talking", "AgentEvent_Call_Release",
        "AgentOther_PhoneAlerting", "AgentState_SetNotReady_Success", "AgentMediaEvent_Unheard.Of", "AgentState_Work",
    ];

    private readonly Random _random = new(seed);
    private readonly int[] _agents = [.. tokens.Keys];
    private readonly Dictionary<int, JsonArray> _lastAccepted = [];
    private long _clock = 1_784_529_722_000;
    private int _pushes;

    /// <summary>An accepted push is its agent's last batch: the fuzzer builds retries from it (not from a mutated one).</summary>
    public void Accepted(FuzzPush push)
    {
        if (push.Events is { } events)
        {
            _lastAccepted[push.AgentId] = events;
        }
        else
        {
            _lastAccepted.Remove(push.AgentId);
        }
    }

    public FuzzPush Next()
    {
        _pushes++;
        var agent = _agents[_random.Next(_agents.Length)];
        var roll = _random.NextDouble();
        if (roll < 0.06 && _lastAccepted.TryGetValue(agent, out var last))
        {
            // The gateway re-sends the batch whose answer it did not see: nothing new is stored.
            return Valid(agent, (JsonArray)last.DeepClone(), "retry: identical", newEvents: 0);
        }

        if (roll < 0.12 && _lastAccepted.TryGetValue(agent, out last))
        {
            // The gateway re-sends it with what came since appended: only those are new.
            var events = (JsonArray)last.DeepClone();
            var added = 1 + _random.Next(3);
            for (var i = 0; i < added; i++)
            {
                events.Add(NewEvent(agent));
            }

            return Valid(agent, events, "retry: appended", added);
        }

        var fresh = new JsonArray();
        var count = 1 + _random.Next(4);
        for (var i = 0; i < count; i++)
        {
            fresh.Add(NewEvent(agent));
        }

        if (roll < 0.30)
        {
            return Valid(agent, fresh, "valid", count);
        }

        return Mutate(agent, fresh);
    }

    private FuzzPush Valid(int agent, JsonArray events, string kind, int newEvents)
    {
        var body = new JsonObject { ["workNo"] = agent.ToString(System.Globalization.CultureInfo.InvariantCulture), ["eventList"] = events.DeepClone() };
        return new FuzzPush(agent, kind, Encoding.UTF8.GetBytes(body.ToJsonString()), tokens[agent], "application/json; charset=UTF-8", events, newEvents);
    }

    private JsonObject NewEvent(int agent)
    {
        var e = new JsonObject
        {
            ["eventType"] = EventTypes[_random.Next(EventTypes.Length)],
            ["workNo"] = agent.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["eventGenTime"] = _clock += 1 + _random.Next(50),
            ["content"] = _random.Next(6) switch
            {
                0 => null,
                1 => JsonValue.Create($"{_pushes}-{_random.Next(100000)}"),
                2 => new JsonObject { ["reason"] = "200", ["result"] = 0, ["marker"] = _pushes },
                3 => new JsonArray(1, "two", true, null, 3.25),
                4 => new JsonObject { ["nested"] = new JsonObject { ["list"] = new JsonArray(_pushes, "é😀") } },
                _ => JsonValue.Create(_random.Next()),
            },
        };
        return e;
    }

    private FuzzPush Mutate(int agent, JsonArray events)
    {
        var body = new JsonObject { ["workNo"] = agent.ToString(System.Globalization.CultureInfo.InvariantCulture), ["eventList"] = events };
        var token = tokens[agent];
        var contentType = "application/json; charset=UTF-8";
        var kinds = new List<string>();
        byte[]? bytes = null;
        var mutations = 1 + _random.Next(3);
        for (var m = 0; m < mutations; m++)
        {
            var kind = _random.Next(16);
            kinds.Add(KindNames[kind]);
            switch (kind)
            {
                case 0: // flip a byte
                    bytes ??= Encoding.UTF8.GetBytes(body.ToJsonString());
                    bytes[_random.Next(bytes.Length)] = (byte)_random.Next(256);
                    break;
                case 1: // cut short
                    bytes ??= Encoding.UTF8.GetBytes(body.ToJsonString());
                    bytes = bytes[.._random.Next(bytes.Length)];
                    break;
                case 2: // insert odd bytes: NUL, invalid UTF-8, an encoded surrogate, a quote
                    bytes ??= Encoding.UTF8.GetBytes(body.ToJsonString());
                    byte[][] odd = [[0], [0xFF], [0xC3], [0xED, 0xA0, 0x80], [(byte)'"'], [(byte)'\\'], [0xF4, 0x90, 0x80, 0x80]];
                    var at = _random.Next(bytes.Length + 1);
                    bytes = [.. bytes[..at], .. odd[_random.Next(odd.Length)], .. bytes[at..]];
                    break;
                case 3: // swap a value's type
                    SwapType(body);
                    break;
                case 4: // nest deeply
                    var depth = 20 + _random.Next(100);
                    var text = new string('[', depth) + "1" + new string(']', depth);
                    SetContent(events, JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 256 }));
                    break;
                case 5: // an escaped NUL or lone surrogate in a string
                    bytes = Encoding.UTF8.GetBytes(InsertEscape(body.ToJsonString(), _random.Next(2) == 0 ? "\\u0000" : _random.Next(2) == 0 ? "\\ud800" : "\\udfff"));
                    break;
                case 6: // huge values
                    SetContent(events, _random.Next(4) switch
                    {
                        0 => JsonNode.Parse("1e" + _random.Next(100_000, 400_000)),
                        1 => JsonNode.Parse("-0." + new string('0', 20_000) + "1"),
                        2 => JsonValue.Create(new string('x', 200_000 + _random.Next(300_000))),
                        _ => JsonNode.Parse(new string('9', 140_000)),
                    });
                    break;
                case 7: // an event type too long, empty or odd
                    Item(events)["eventType"] = _random.Next(4) switch
                    {
                        0 => new string('A', 129),
                        1 => "",
                        2 => "Agent\u0001State",
                        _ => "AgentState_" + new string('é', 120),
                    };
                    break;
                case 8: // another workNo in the body or an item
                    var target = _random.Next(2) == 0 ? body : Item(events);
                    target["workNo"] = _random.Next(6) switch
                    {
                        0 => _agents[_random.Next(_agents.Length)].ToString(System.Globalization.CultureInfo.InvariantCulture),
                        1 => "abc",
                        2 => 99,
                        3 => 1e3,
                        4 => "1000000",
                        _ => " 1001",
                    };
                    break;
                case 9: // odd generation times
                    Item(events)["eventGenTime"] = _random.Next(5) switch
                    {
                        0 => -1,
                        1 => 1.5,
                        2 => "17845297220001234567890",
                        3 => JsonValue.Create(long.MaxValue),
                        _ => "yesterday",
                    };
                    break;
                case 10: // odd eventList
                    body["eventList"] = _random.Next(4) switch
                    {
                        0 => new JsonArray(),
                        1 => new JsonObject(),
                        2 => new JsonArray(1, "x"),
                        _ => null,
                    };
                    break;
                case 11: // a wrong token
                    token = _random.Next(3) switch
                    {
                        0 => "NotTheToken" + _random.Next(),
                        1 when token is { Length: > 1 } => token[..^1] + (token[^1] == 'A' ? 'B' : 'A'),
                        _ => token + " ",
                    };
                    break;
                case 12: // no token
                    token = null;
                    break;
                case 13: // another agent's token
                    token = tokens[_agents[(Array.IndexOf(_agents, agent) + 1) % _agents.Length]];
                    break;
                case 14: // odd content types
                    contentType = _random.Next(5) switch
                    {
                        0 => "text/plain",
                        1 => "application/json; charset=latin1",
                        2 => "APPLICATION/JSON",
                        3 => "application/x-www-form-urlencoded",
                        _ => "application/json; charset=\"utf-8\"",
                    };
                    break;
                default: // duplicate keys
                    bytes ??= Encoding.UTF8.GetBytes(body.ToJsonString());
                    var json = Encoding.UTF8.GetString(bytes);
                    bytes = Encoding.UTF8.GetBytes(json.Length > 1 && json[^1] == '}' ? json[..^1] + ",\"workNo\":\"1003\",\"eventList\":[]}" : json);
                    break;
            }
        }

        bytes ??= Encoding.UTF8.GetBytes(body.ToJsonString());
        return new FuzzPush(agent, string.Join(", ", kinds), bytes, token, contentType, null, null);
    }

    private static readonly string[] KindNames =
    [
        "byte flipped", "cut short", "odd bytes inserted", "type swapped", "deep nesting", "escaped NUL or lone surrogate",
        "huge value", "odd eventType", "other workNo", "odd eventGenTime", "odd eventList", "wrong token", "no token",
        "other agent's token", "odd content type", "duplicate keys",
    ];

    /// <summary>One of the items (an earlier mutation may have made one something else: then a stand-in nobody sends).</summary>
    private JsonObject Item(JsonArray events) =>
        events.Count > 0 && events[_random.Next(events.Count)] is JsonObject item ? item : [];

    private void SetContent(JsonArray events, JsonNode? content) => Item(events)["content"] = content;

    private void SwapType(JsonObject body)
    {
        JsonNode?[] choices = [null, 7, "7", true, new JsonArray(), new JsonObject { ["x"] = 1 }, 1e300, -0.0];
        var replacement = choices[_random.Next(choices.Length)];
        if (_random.Next(3) == 0 || body["eventList"] is not JsonArray { Count: > 0 } list)
        {
            body[_random.Next(2) == 0 ? "workNo" : "eventList"] = replacement?.DeepClone();
            return;
        }

        var item = Item(list);
        string[] keys = ["eventType", "workNo", "eventGenTime", "content"];
        item[keys[_random.Next(keys.Length)]] = replacement?.DeepClone();
    }

    private string InsertEscape(string json, string escape)
    {
        // Inside a string: right after one of its opening quotes.
        var quotes = Enumerable.Range(0, json.Length).Where(i => json[i] == '"').ToList();
        var at = quotes.Count == 0 ? 0 : quotes[_random.Next(quotes.Count)] + 1;
        return json.Insert(at, escape);
    }
}

/// <summary>
/// One push of the fuzz test. <see cref="NewEvents"/> is how many events it must store if it is accepted (for the pushes
/// the fuzzer knows to be valid); for a mutated one it is what its eventList holds, read the way any JSON reader would.
/// </summary>
internal sealed record FuzzPush(int AgentId, string Kind, byte[] Body, string? Token, string ContentType, JsonArray? Events, int? NewEvents);
