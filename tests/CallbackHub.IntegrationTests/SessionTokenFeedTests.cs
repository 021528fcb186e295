using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// What an instance knows about agents' tokens is kept current by reading only the sessions whose tokens changed (the change
/// feed), not by reading every agent's tokens again every Callbacks__SessionCacheTtl: a revocation made anywhere applies within
/// the poll interval, including one committed after later changes were already read, and a push does not wait for a second
/// query however long ago its agent's tokens were read.
/// </summary>
public sealed class SessionTokenFeedTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    // A TTL far longer than any test here: whatever is refused in time was refused because of the feed.
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Callbacks:SessionCacheTtl"] = "00:01:00",
        ["Callbacks:SessionChangePollInterval"] = Poll.ToString(),
        ["Sessions:SignOutGrace"] = "00:00:00",
    };

    [Fact]
    public async Task A_sign_out_made_by_another_instance_is_refused_here_within_a_few_polls()
    {
        var token = await SignInAsync();
        await using var other = await StartHubAsync();
        Assert.Equal(HttpStatusCode.OK, await PushAsync(other, token, 1));

        using var signOut = await Hub.Api.DeleteAsync($"/api/agents/{Agent}/session");
        Assert.Equal(HttpStatusCode.OK, signOut.StatusCode);
        var refusedAfter = await RefusedWithinAsync(other, token, TimeSpan.FromSeconds(5));

        Assert.True(refusedAfter < TimeSpan.FromSeconds(5), $"the signed-out token was still accepted {refusedAfter.TotalSeconds:0.0} s after the sign-out");
    }

    [Fact]
    public async Task A_token_cleared_in_a_transaction_that_commits_after_later_changes_were_read_is_still_refused()
    {
        var token = await SignInAsync();
        await SignInAsync(Agent + 1);
        await using var other = await StartHubAsync();
        Assert.Equal(HttpStatusCode.OK, await PushAsync(other, token, 1));

        // Cleared by hand, in a transaction left open while other sessions change and the feed polls past them.
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var clear = new NpgsqlCommand(
            $"UPDATE agent_sessions SET token_hash = NULL, token_seen_at = NULL, previous_token_hash = NULL WHERE agent_id = {Agent}", connection, transaction))
        {
            await clear.ExecuteNonQueryAsync();
        }

        await using (var later = new NpgsqlCommand(
            $"UPDATE agent_sessions SET token_seen_at = now() WHERE agent_id = {Agent + 1}", new NpgsqlConnection(Database)))
        {
            await later.Connection!.OpenAsync();
            await later.ExecuteNonQueryAsync();
            await later.Connection.DisposeAsync();
        }

        await Task.Delay(Poll * 5);
        Assert.Equal(HttpStatusCode.OK, await PushAsync(other, token, 2));
        await transaction.CommitAsync();
        var refusedAfter = await RefusedWithinAsync(other, token, TimeSpan.FromSeconds(5));

        Assert.True(refusedAfter < TimeSpan.FromSeconds(5), $"the cleared token was still accepted {refusedAfter.TotalSeconds:0.0} s after the commit");
    }

    [Fact]
    public async Task Deleting_a_session_row_by_hand_is_refused_with_the_way_to_revoke_its_tokens_instead()
    {
        var token = await SignInAsync();

        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var delete = new NpgsqlCommand($"DELETE FROM agent_sessions WHERE agent_id = {Agent}", connection);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => delete.ExecuteNonQueryAsync());

        Assert.Contains("not deleted", refused.MessageText);
        Assert.Contains("UPDATE agent_sessions SET token_hash = NULL", refused.Hint);
        Assert.Equal(1L, await EventRows.ScalarAsync<long>(Database, $"SELECT count(*) FROM agent_sessions WHERE agent_id = {Agent}"));
        Assert.Equal(HttpStatusCode.OK, await PushAsync(Hub, token, 1));
    }

    [Fact]
    public async Task Pushes_past_the_cache_ttl_do_not_read_the_agents_tokens_again_while_the_feed_keeps_up()
    {
        var token = await SignInAsync();
        // A short TTL here: without the feed, this agent's tokens would be read again about every second.
        await using var other = await StartHubAsync(new Dictionary<string, string?>
        {
            ["Callbacks:SessionCacheTtl"] = "00:00:01",
            ["Callbacks:SessionChangePollInterval"] = "00:00:00.1",
        });

        var watch = Stopwatch.StartNew();
        for (var push = 1; watch.Elapsed < TimeSpan.FromSeconds(5); push++)
        {
            Assert.Equal(HttpStatusCode.OK, await PushAsync(other, token, push));
            await Task.Delay(100);
        }

        // Read once, on the first push (or not at all, if the feed brought the session first); without the feed, again about
        // every second. One more is allowed, should a poll ever come over a second late on a busy machine.
        var reads = PrometheusText.Sum(await other.MetricsAsync(), "callbackhub_session_tokens_reads_total");
        Assert.True(reads <= 2, $"the agent's tokens were read {reads} times in {watch.Elapsed.TotalSeconds:0.0} s of pushes");
    }

    [Fact]
    public async Task Heartbeats_do_not_make_the_agents_next_push_read_its_tokens_again()
    {
        // A heartbeat every second here (every 30 s by default): each one saves the session, and used to drop what this
        // instance knew of the agent's tokens, so that its next push read them again (at 50,000 agents, 1,700 reads a second).
        await using var keeper = await StartHubAsync(new Dictionary<string, string?>
        {
            ["Sessions:HeartbeatInterval"] = "00:00:01",
            ["Sessions:KeeperInterval"] = "00:00:00.5",
        });
        using (var signIn = await keeper.SignInAsync(Agent))
        {
            Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
        }

        var token = await Gateway.ServiceTokenAsync(Agent);
        var watch = Stopwatch.StartNew();
        for (var push = 1; watch.Elapsed < TimeSpan.FromSeconds(5); push++)
        {
            Assert.Equal(HttpStatusCode.OK, await PushAsync(keeper, token, push));
            await Task.Delay(100);
        }

        var heartbeats = (await Gateway.RequestsAsync(Agent)).Count(r => r!["path"]!.GetValue<string>().EndsWith("/handshake", StringComparison.Ordinal));
        var reads = PrometheusText.Sum(await keeper.MetricsAsync(), "callbackhub_session_tokens_reads_total");
        Assert.True(heartbeats >= 3, $"{heartbeats} heartbeats in {watch.Elapsed.TotalSeconds:0.0} s");
        // Once at most, on the first push (the feed may bring the session first).
        Assert.True(reads <= 1, $"the agent's tokens were read {reads} times in {watch.Elapsed.TotalSeconds:0.0} s of pushes ({heartbeats} heartbeats)");
    }

    [Fact]
    public async Task Each_poll_reads_only_the_changed_sessions_through_the_index_among_50_000()
    {
        await SignInAsync();
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        // Signed out (the keepers leave them alone), each with a token, changed in one transaction before the poll's snapshot.
        await using (var fill = new NpgsqlCommand("""
            INSERT INTO agent_sessions (agent_id, state, updated_at, previous_token_hash, previous_token_valid_until)
            SELECT g, 'signed-out', now(), sha256(g::text::bytea), now() + interval '1 minute' FROM generate_series(200000, 250000) g;
            ANALYZE agent_sessions
            """, connection))
        {
            await fill.ExecuteNonQueryAsync();
        }

        long from;
        await using (var snapshot = new NpgsqlCommand("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint", connection))
        {
            from = (long)(await snapshot.ExecuteScalarAsync())!;
        }

        // One session changes after the snapshot: the next poll reads it, and it alone.
        await using (var change = new NpgsqlCommand($"UPDATE agent_sessions SET token_seen_at = now() WHERE agent_id = {Agent}", connection))
        {
            await change.ExecuteNonQueryAsync();
        }

        await using var explain = new NpgsqlCommand($"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {Agents.TokenChangeFeed.ChangedSql}", connection);
        explain.Parameters.Add(new NpgsqlParameter<long> { TypedValue = from });
        explain.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [from - 5, from - 3] });
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        var text = string.Join("\n", plan);
        Assert.DoesNotContain("Seq Scan", text);
        Assert.Contains("ix_agent_sessions_tokens_changed_xid", text);
        Assert.Matches(@"\(actual rows=1 loops=1\)", plan[0]);
    }

    /// <summary>Pushes until one is refused; how long after the call that took.</summary>
    private static async Task<TimeSpan> RefusedWithinAsync(CallbackHubInstance hub, string token, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        for (var push = 100; watch.Elapsed < limit; push++)
        {
            var status = await PushAsync(hub, token, push);
            if (status == HttpStatusCode.Unauthorized)
            {
                return watch.Elapsed;
            }

            Assert.Equal(HttpStatusCode.OK, status);
            await Task.Delay(50);
        }

        return watch.Elapsed;
    }

    private static async Task<HttpStatusCode> PushAsync(CallbackHubInstance hub, string token, int n)
    {
        var body = $$$"""{"workNo":"{{{Agent}}}","eventList":[{"eventType":"AgentState_Work","workNo":"{{{Agent}}}","content":{"n":{{{n}}}}}]}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/callbacks/agent-events") { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json; charset=UTF-8");
        request.Headers.TryAddWithoutValidation("service_token", token);
        using var response = await hub.Callbacks.SendAsync(request);
        return response.StatusCode;
    }
}
