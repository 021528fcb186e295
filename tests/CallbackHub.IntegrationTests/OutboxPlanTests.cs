using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;
using CallbackHub.Outbox;
using Npgsql;

namespace CallbackHub.IntegrationTests;

/// <summary>
/// The outbox's prepared statements reach the agents' stream rows through the key in every plan. Npgsql prepares them and
/// they run their generic plans, planned without the arrays' contents; a first version of the group append joined the
/// unnested arrays to agent_streams, and its generic plan read the whole table for every group (tens of thousands of rows at
/// the size CallbackHub is built for).
/// </summary>
public sealed class OutboxPlanTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    [Fact]
    public async Task The_generic_plan_of_the_group_append_reads_stream_rows_by_key_and_locks_them_in_agent_order()
    {
        var plan = await GenericPlanAsync(
            "int[], int[], int[], int[], timestamptz[], timestamptz[], bytea[], int[], int[], text[], text[], timestamptz[], uuid[]",
            EventStore.AppendSql,
            $$"""
            '{{{Agent}},200001}', '{1,1}', '{0,1}', '{1,1}', '{2026-12-03 16:00+00,2026-12-03 16:00+00}',
            '{2026-12-03 15:55+00,2026-12-03 15:55+00}', '{"\\x01","\\x02"}', '{1,2}', '{1,1}',
            '{AgentState_Ready,AgentState_Ready}', '{"null","null"}', '{NULL,NULL}',
            '{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}'
            """);

        Assert.DoesNotContain("Seq Scan on agent_streams", plan);
        Assert.Contains("Index Scan using \"PK_agent_streams\" on agent_streams", plan);
        // The rows are locked as the key index returns them (agent order), before the update touches any.
        Assert.Matches(@"CTE locked\s*\n\s*->\s+LockRows\s*\n\s*->\s+Index Scan using ""PK_agent_streams""", plan);
    }

    [Fact]
    public async Task The_generic_plan_of_the_progress_record_reads_stream_rows_by_key_and_locks_them_in_agent_order()
    {
        var plan = await GenericPlanAsync(
            "int[], bigint[], int[], bigint[], text", OutboxDispatcher.RecordSql, $"'{{{Agent},200001}}', '{{1,1}}', '{{1,2}}', '{{1,1}}', 'instance'");

        Assert.DoesNotContain("Seq Scan on agent_streams", plan);
        Assert.Matches(@"CTE free\s*\n\s*->\s+LockRows\s*\n\s*->\s+Index Scan using ""PK_agent_streams""", plan);
        Assert.Matches(@"Index Scan using ""PK_agent_streams"" on agent_streams s\s*\n\s*Index Cond: \(agent_id = v\.agent_id\)", plan);
    }

    /// <summary>The generic plan of <paramref name="sql"/> with 50,000 more stream rows than the test's agent.</summary>
    private async Task<string> GenericPlanAsync(string parameterTypes, string sql, string arguments)
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2);

        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using (var fill = new NpgsqlCommand(
            "INSERT INTO agent_streams (agent_id, last_sequence) SELECT g, 0 FROM generate_series(200000, 250000) g; ANALYZE agent_streams",
            connection))
        {
            await fill.ExecuteNonQueryAsync();
        }

        await using var explain = new NpgsqlCommand($"""
            BEGIN;
            SET LOCAL plan_cache_mode = force_generic_plan;
            PREPARE plan_under_test({parameterTypes}) AS
            {sql};
            EXPLAIN (COSTS OFF) EXECUTE plan_under_test({arguments});
            """, connection);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            do
            {
                while (await reader.ReadAsync())
                {
                    plan.Add(reader.GetString(0));
                }
            }
            while (await reader.NextResultAsync());
        }

        return string.Join('\n', plan);
    }
}
