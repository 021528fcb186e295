using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CallbackHub.Agents;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The webhook under odd and hostile input (issue: no 5xx, no free work for strangers, every event stored once), against a
/// real CallbackHub on Kestrel with a real PostgreSQL.
/// </summary>
public sealed class WebhookHardeningTests(PostgresFixture postgres, RabbitMqFixture rabbitMq, Xunit.Abstractions.ITestOutputHelper output)
    : PipelineTest(postgres, rabbitMq)
{
    private const int SignInEvents = 2;

    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Callbacks:BodyTimeout"] = "00:00:02",
    };

    // A CI run once answered a whole flood 503 (token lookups failing for minutes) with nothing to say why: the hub's own
    // warnings and errors now reach a failed test's output.
    protected override void ConfigureHub(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder) =>
        builder.Logging.AddProvider(new TestOutputLoggerProvider(output));

    [Fact]
    public async Task A_retry_that_repeats_the_last_batch_and_appends_newer_events_stores_only_the_new_ones()
    {
        await using var consumer = await QueueProbe.StartAsync(Broker);
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents, Agent);
        string Item(string type, long at) => $$$"""{"eventType":"{{{type}}}","workNo":"1001","eventGenTime":{{{at}}},"content":{"n":"{{{type}}}"}}""";
        var (a, b, c, d) = (Item("AgentState_Work", 1784529722001), Item("AgentState_Busy", 1784529722002),
            Item("AgentEvent_Ringing", 1784529722003), Item("AgentEvent_Talking", 1784529722004));

        // Our answers to the first three were lost; the gateway retried each time with what had come since appended.
        using var first = await PostAsync(Body(a, b), token);
        using var appended = await PostAsync(Body(a, b, c), token);
        using var identical = await PostAsync(Body(a, b, c), token);
        using var appendedAgain = await PostAsync(Body(a, b, c, d), token);
        // A batch that starts with an older, not the last, batch is new: nothing of it is dropped.
        using var startsWithOlder = await PostAsync(Body(a, b), token);

        Assert.All([first, appended, identical, appendedAgain, startsWithOlder], r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Contains("\"retcode\":\"0\"", await identical.Content.ReadAsStringAsync());
        var rows = (await EventRows.ReadAsync(Database, Agent)).Skip(SignInEvents).ToList();
        Assert.Equal(["AgentState_Work", "AgentState_Busy", "AgentEvent_Ringing", "AgentEvent_Talking", "AgentState_Work", "AgentState_Busy"],
            rows.Select(r => r.EventType));
        var messages = (await consumer.WaitForAsync(SignInEvents + 6)).Where(m => m.Message.AgentId == Agent).ToList();
        await Task.Delay(500);
        Assert.Equal(SignInEvents + 6, consumer.Received.Count(m => m.Message.AgentId == Agent));
        Assert.Equal(Enumerable.Range(1, SignInEvents + 6).Select(i => (long)i), messages.Select(m => m.Message.Sequence));
    }

    [Fact]
    public async Task Without_eventGenTime_a_new_batch_that_repeats_the_last_one_loses_nothing_and_an_identical_one_is_still_dropped()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents, Agent);
        const string Ready = """{"eventType":"AgentState_Ready","workNo":"1001","content":null}""";
        const string Busy = """{"eventType":"AgentState_Busy","workNo":"1001","content":null}""";

        // An older gateway (no eventGenTime): Ready, then Ready again followed by Busy is a real sequence, not a retry.
        using var ready = await PostAsync(Body(Ready), token);
        using var readyAndBusy = await PostAsync(Body(Ready, Busy), token);
        using var identical = await PostAsync(Body(Ready, Busy), token);

        Assert.All([ready, readyAndBusy, identical], r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var rows = (await EventRows.ReadAsync(Database, Agent)).Skip(SignInEvents).ToList();
        Assert.Equal(["AgentState_Ready", "AgentState_Ready", "AgentState_Busy"], rows.Select(r => r.EventType));
    }

    [Fact]
    public async Task Two_different_first_pushes_racing_without_a_stream_row_are_both_stored()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents, Agent);
        for (var round = 0; round < 5; round++)
        {
            // The agent's stream as a sign-in cut short leaves it: a session, no stream row, no events.
            await ExecuteAsync($"DELETE FROM agent_events WHERE agent_id = {Agent}; DELETE FROM agent_streams WHERE agent_id = {Agent}");
            var pushes = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
                PostAsync(Body($$$"""{"eventType":"AgentState_Work","workNo":"1001","content":{"round":{{{round}}},"push":{{{i}}}}}"""), token)));

            Assert.All(pushes, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
            var rows = await EventRows.ReadAsync(Database, Agent);
            Assert.Equal(4, rows.Count);
            Assert.Equal([1L, 2, 3, 4], rows.Select(r => r.Sequence));
            Assert.Equal(4, rows.Select(r => r.Content).Distinct().Count());
            foreach (var push in pushes)
            {
                push.Dispose();
            }
        }
    }

    public static TheoryData<string, string, string> Unstorable => new()
    {
        // name, body (UTF-16 escapes spelled as JSON escapes), the sentence's part
        { "NUL in eventType", """{"workNo":"1001","eventList":[{"eventType":"AgentState\u0000Ready"}]}""", "control character" },
        { "lone surrogate in eventType", """{"workNo":"1001","eventList":[{"eventType":"AgentState\ud800"}]}""", "surrogate" },
        { "number numeric cannot hold", """{"workNo":"1001","eventList":[{"eventType":"A","content":{"x":1e400000}}]}""", "number PostgreSQL cannot store" },
        { "lone surrogate in workNo", """{"workNo":"10\udc0001","eventList":[{"eventType":"A"}]}""", "workNo" },
    };

    [Theory]
    [MemberData(nameof(Unstorable))]
    public async Task Input_that_can_never_be_stored_is_answered_400_not_503_and_stores_nothing(string name, string body, string expected)
    {
        Assert.NotEmpty(name);
        var token = await SignInAsync();
        var before = await Database.WaitForRowsAsync(SignInEvents);

        using var response = await PostAsync(body, token);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("100-001", answer.GetProperty("retcode").GetString());
        Assert.Contains(expected, answer.GetProperty("message").GetString());
        Assert.Equal(before.Count, (await EventRows.ReadAsync(Database)).Count);
    }

    [Fact]
    public async Task Content_with_a_NUL_or_a_lone_surrogate_is_stored_with_the_replacement_character()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents);

        using var response = await PostAsync(Body("""{"eventType":"A","content":{"callId":"12\u0000\ud800-3","ok":"\ud83d\ude00"}}"""), token);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var row = (await EventRows.ReadAsync(Database, Agent))[^1];
        Assert.Equal("""{"ok": "😀", "callId": "12��-3"}""", row.Content);
    }

    [Fact]
    public async Task A_body_that_is_not_valid_UTF8_is_refused_and_stores_nothing()
    {
        var token = await SignInAsync();
        var before = await Database.WaitForRowsAsync(SignInEvents);
        var bytes = Encoding.UTF8.GetBytes(Body("""{"eventType":"A","zz":1}"""));
        bytes[Array.IndexOf(bytes, (byte)'z')] = 0xFF;

        using var response = await PostAsync(bytes, token);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("UTF-8", await response.Content.ReadAsStringAsync());
        Assert.Equal(before.Count, (await EventRows.ReadAsync(Database)).Count);
    }

    [Fact]
    public async Task The_pushes_right_after_a_sign_in_are_checked_from_memory_without_a_token_lookup()
    {
        // The gateway pushes with the new token as soon as it takes the sign-in, often before it answers.
        for (var agent = Agent; agent < Agent + 5; agent++)
        {
            await SignInAsync(agent);
        }

        Assert.Equal(5 * SignInEvents, (await Database.WaitForRowsAsync(5 * SignInEvents)).Count);
        Assert.Equal(0, Hub.App.Services.GetRequiredService<TokenLookup>().Queries);
    }

    [Fact]
    public async Task Wrong_tokens_naming_thousands_of_agents_cost_a_few_queries_and_never_hold_up_the_gateway()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(SignInEvents);
        await EventRows.WaitUntilPublishedAsync(Database);
        var lookup = Hub.App.Services.GetRequiredService<TokenLookup>();
        var queriesBefore = lookup.Queries;
        var transactionsBefore = await TransactionsAsync();

        // 5,000 made-up tokens, each naming another agent.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var statuses = await FloodAsync(0, 5000);
        var flood = watch.Elapsed;

        var queries = lookup.Queries - queriesBefore;
        var transactions = await TransactionsAsync() - transactionsBefore;
        Assert.Equal(5000, statuses.Count);
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.Unauthorized or HttpStatusCode.TooManyRequests, $"answered {s}"));
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        output.WriteLine($"5,000 wrong tokens in {flood.TotalSeconds:0.0} s: {queries} token lookups, {transactions} transactions in pg_stat_database, "
            + $"{statuses.Count(x => x == HttpStatusCode.Unauthorized)} answered 401, {statuses.Count(x => x == HttpStatusCode.TooManyRequests)} 429");
        // What the strangers cost: the token lookups, a few a second whatever they send.
        Assert.True(queries < 30, $"{queries} token lookups for 5,000 wrong tokens in {flood.TotalSeconds:0.0} s");
        // Everything this database counted meanwhile: the lookups plus the service's own rounds (2–3 a second: leases, the
        // outbox poll, the monitor), whose statistics reach pg_stat_database when each connection reports them.
        Assert.True(transactions < 100, $"{transactions} transactions for 5,000 wrong tokens ({queries} token lookups, {flood.TotalSeconds:0.0} s)");

        // Again, while the gateway pushes from the same address with the real token: never refused, never throttled.
        var gatewayStatuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        using var flooding = new CancellationTokenSource();
        var gateway = Task.Run(async () =>
        {
            for (var i = 0; !flooding.IsCancellationRequested; i++)
            {
                using var response = await PostAsync(Body($$$"""{"eventType":"AgentState_Work","workNo":"1001","content":{"i":{{{i}}}}}"""), token);
                gatewayStatuses.Add(response.StatusCode);
                await Task.Delay(20);
            }
        });
        await FloodAsync(5000, 2000);
        await flooding.CancelAsync();
        await gateway;

        Assert.NotEmpty(gatewayStatuses);
        Assert.All(gatewayStatuses, s => Assert.Equal(HttpStatusCode.OK, s));
    }

    private async Task<IReadOnlyCollection<HttpStatusCode>> FloodAsync(int from, int count)
    {
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        await Parallel.ForEachAsync(Enumerable.Range(from, count), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
        {
            var workNo = 101 + i;
            using var response = await PostAsync(
                $$"""{"workNo":"{{workNo}}","eventList":[{"eventType":"AgentState_Ready","workNo":"{{workNo}}"}]}""", $"Wrong{i:D8}Token");
            statuses.Add(response.StatusCode);
        });
        return statuses;
    }

    [Fact]
    public async Task A_body_that_does_not_arrive_in_time_is_answered_408_and_stores_nothing()
    {
        var token = await SignInAsync();
        var before = await Database.WaitForRowsAsync(SignInEvents);
        using var client = new TcpClient();
        await client.ConnectAsync(Hub.BaseUri.Host, Hub.BaseUri.Port);
        await using var stream = client.GetStream();
        var body = Encoding.UTF8.GetBytes(Body("""{"eventType":"A"}"""));
        var head = $"POST /callbacks/agent-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nservice_token: {token}\r\nContent-Length: {body.Length}\r\n\r\n";
        var started = DateTime.UtcNow;

        // Half the body, then nothing: a sender holding a connection open.
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head).Concat(body.Take(body.Length / 2)).ToArray());
        var answer = await ReadAnswerAsync(stream, TimeSpan.FromSeconds(15));

        Assert.StartsWith("HTTP/1.1 408", answer);
        // Whichever ends it first, in the gateway's shape: the body deadline (2 s here), or Kestrel's minimum data rate
        // (nothing at all arrives after its 2 s grace).
        Assert.Matches("\"retcode\":\"100-001\"", answer);
        Assert.Matches("did not arrive within 2 s|arriving too slowly", answer);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(10));
        Assert.Equal(before.Count, (await EventRows.ReadAsync(Database)).Count);
    }

    private static async Task<string> ReadAnswerAsync(NetworkStream stream, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var buffer = new byte[8192];
        var text = new StringBuilder();
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancel.Token)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read));
                if (text.ToString().Contains("\"retcode\"", StringComparison.Ordinal) && text.ToString().TrimEnd().EndsWith('}'))
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }

        return text.ToString();
    }

    private async Task<long> TransactionsAsync()
    {
        // Statistics reach pg_stat_database when each backend reports them (within a second when idle).
        await Task.Delay(1500);
        var name = new NpgsqlConnectionStringBuilder(Database).Database;
        return await EventRows.ScalarAsync<long>(Postgres.AdminConnectionString,
            $"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{name}'");
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Body(params string[] items) => $$"""{"workNo":"1001","eventList":[{{string.Join(",", items)}}]}""";

    private Task<HttpResponseMessage> PostAsync(string body, string? token) => PostAsync(Encoding.UTF8.GetBytes(body), token);

    private Task<HttpResponseMessage> PostAsync(byte[] body, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/callbacks/agent-events") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json; charset=UTF-8");
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("service_token", token);
        }

        return Hub.Callbacks.SendAsync(request);
    }
}
