using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;
using Xunit.Abstractions;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// Thousands of generated and mutated pushes against a running CallbackHub with a real PostgreSQL, one at a time so that
/// every answer can be checked against what it did to the table: no 5xx, every answer in the gateway's shape, nothing
/// stored for a refusal, and every accepted event stored exactly once (retries included).
/// <c>CALLBACKHUB_FUZZ_PUSHES</c> and <c>CALLBACKHUB_FUZZ_SEED</c> change the count (3,000) and the seed.
/// </summary>
public sealed class WebhookFuzzTests(PostgresFixture postgres, RabbitMqFixture rabbitMq, ITestOutputHelper output) : PipelineTest(postgres, rabbitMq)
{
    private static readonly int[] Agents = [1001, 1002, 1003];

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        // The tokens the fuzzer holds stay the agents' current ones.
        ["Sessions:TokenRotationInterval"] = "00:00:00",
        // Every refusal says why (the per-address limit would answer most of them 429, unread).
        ["Callbacks:RefusalsPerSecondPerAddress"] = "1000000",
        ["Callbacks:RefusalBurst"] = "1000000",
        // One push at a time: a made-up token should not wait for the lookups' pacing (tested in WebhookHardeningTests).
        ["Callbacks:TokenLookupsPerSecond"] = "1000",
    };

    [Fact]
    public async Task Mutated_pushes_never_get_a_5xx_store_nothing_when_refused_and_every_accepted_event_exactly_once()
    {
        var pushes = int.TryParse(Environment.GetEnvironmentVariable("CALLBACKHUB_FUZZ_PUSHES"), out var n) ? n : 3000;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("CALLBACKHUB_FUZZ_SEED"), out var s) ? s : 20261202;
        var tokens = new Dictionary<int, string>();
        foreach (var agent in Agents)
        {
            tokens[agent] = await SignInAsync(agent);
        }

        await Database.WaitForRowsAsync(2 * Agents.Length);
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        var fuzzer = new PushFuzzer(seed, tokens);
        var rows = await CountAsync(connection);
        var (accepted, refused, storedEvents) = (0, 0, 0L);
        var statuses = new SortedDictionary<int, int>();
        var watch = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("CALLBACKHUB_FUZZ_SECONDS"), out var t) ? t : 240);
        var sent = 0;
        for (; sent < pushes && watch.Elapsed < deadline; sent++)
        {
            var push = fuzzer.Next();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/callbacks/agent-events") { Content = new ByteArrayContent(push.Body) };
            request.Content.Headers.TryAddWithoutValidation("Content-Type", push.ContentType);
            if (push.Token is not null)
            {
                request.Headers.TryAddWithoutValidation("service_token", push.Token);
            }

            using var response = await Hub.Callbacks.SendAsync(request);
            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            var answer = await response.Content.ReadAsStringAsync();
            var now = await CountAsync(connection);
            var what = $"push {sent} (seed {seed}, {push.Kind}) answered {status} {answer}";

            Assert.True(status < 500, what);
            var retcode = JsonDocument.Parse(answer).RootElement.GetProperty("retcode").GetString();
            Assert.True(status == 200 == (retcode == "0"), what);
            if (retcode == "0")
            {
                var expected = push.NewEvents ?? EventsIn(push.Body);
                Assert.True(now - rows == expected, $"{what}: stored {now - rows} events, expected {expected}");
                fuzzer.Accepted(push);
                accepted++;
                storedEvents += now - rows;
            }
            else
            {
                Assert.True(now == rows, $"{what}: stored {now - rows} events for a refusal");
                Assert.False(push.Kind is "valid" or "retry: identical" or "retry: appended", what);
                refused++;
            }

            rows = now;
        }

        output.WriteLine($"{sent} pushes in {watch.Elapsed.TotalSeconds:0} s (seed {seed}): {accepted} accepted ({storedEvents} events stored), {refused} refused; statuses {string.Join(", ", statuses.Select(p => $"{p.Key}×{p.Value}"))}");
        Assert.True(sent >= Math.Min(pushes, 1000), $"only {sent} pushes in {deadline}");
        Assert.True(accepted > sent / 10 && refused > sent / 2, $"{accepted} accepted, {refused} refused: the mix is off");
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT count(*) FROM agent_events", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>How many events an accepted body holds, read the way any JSON reader reads it.</summary>
    private static int EventsIn(byte[] body) =>
        JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 256 }).RootElement.GetProperty("eventList").GetArrayLength();
}
