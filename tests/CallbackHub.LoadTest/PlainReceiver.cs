using System.Globalization;
using System.Text;
using System.Text.Json;
using CallbackHub.Contracts;
using MassTransit;
using Microsoft.AspNetCore.Http;
using Npgsql;
using NpgsqlTypes;

namespace CallbackHub.LoadTest;

/// <summary>
/// The baseline CallbackHub is compared with: the same work without an outbox, written as plainly as it gets.
/// Kestrel takes the push (<c>POST /callbacks/agent-events</c>, the <c>service_token</c> header read but not checked),
/// parses it, numbers the agent's events from an in-memory per-agent counter (1, 2, 3… in arrival order, as
/// CallbackHub does), writes them with one multi-row INSERT (autocommit: one commit per push), then publishes each
/// as <see cref="AgentEventReceived"/> through MassTransit, awaiting every confirm one after another, and only then
/// answers <c>{"message":"success","retcode":"0"}</c>. It runs as its own process
/// (<c>dotnet CallbackHub.LoadTest.dll --serve-plain-receiver</c>, started by <see cref="HubProcess.StartPlainReceiverAsync"/>)
/// so that its CPU time is measured apart from the tool's.
/// </summary>
internal static class PlainReceiver
{
    public const string Flag = "--serve-plain-receiver";
    public const string PostgresVariable = "PLAIN_RECEIVER_POSTGRES";
    public const string RabbitMqVariable = "PLAIN_RECEIVER_RABBITMQ";
    public const string ReadyPath = "/ready";
    public const string Table = "plain_receiver_events";

    private const string CallbackPath = "/callbacks/agent-events";
    private const int Columns = 7;

    private static readonly byte[] SuccessBody = Encoding.UTF8.GetBytes("""{"message":"success","retcode":"0"}""");
    private static readonly string[] InsertSql = [.. Enumerable.Range(0, 65).Select(BuildInsert)];

    public static async Task RunAsync()
    {
        var postgres = Environment.GetEnvironmentVariable(PostgresVariable) ?? throw new InvalidOperationException($"{PostgresVariable} is not set.");
        var rabbitMq = Environment.GetEnvironmentVariable(RabbitMqVariable) ?? throw new InvalidOperationException($"{RabbitMqVariable} is not set.");

        await using var dataSource = NpgsqlDataSource.Create(postgres);
        await using (var create = dataSource.CreateCommand($"""
            CREATE TABLE IF NOT EXISTS {Table} (
                id bigserial PRIMARY KEY, event_id uuid NOT NULL, agent_id int NOT NULL, sequence bigint NOT NULL,
                event_type text NOT NULL, content jsonb, event_gen_time timestamptz, received_at timestamptz NOT NULL)
            """))
        {
            await create.ExecuteNonQueryAsync();
        }

        // A topic exchange, as CallbackHub declares it, so the routing keys work the same for consumers.
        var bus = Baselines.CreateBus(rabbitMq, rabbit => rabbit.Publish<AgentEventReceived>(p => p.ExchangeType = RabbitMQ.Client.ExchangeType.Topic));
        await bus.StartAsync();
        try
        {
            var builder = WebApplication.CreateBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            var app = builder.Build();
            var lastSequence = new Dictionary<int, long>();
            app.MapGet(ReadyPath, () => "ready");
            app.MapPost(CallbackPath, (HttpContext http) => ReceiveAsync(http, dataSource, bus, lastSequence));
            await app.RunAsync();
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    private static async Task ReceiveAsync(HttpContext http, NpgsqlDataSource dataSource, IBus bus, Dictionary<int, long> lastSequence)
    {
        _ = http.Request.Headers["service_token"].ToString(); // read, as CallbackHub does, but not checked
        var receivedAt = DateTimeOffset.UtcNow;
        int agentId;
        AgentEventReceived[] messages;
        using (var document = await JsonDocument.ParseAsync(http.Request.Body))
        {
            var root = document.RootElement;
            var workNo = root.GetProperty("workNo");
            agentId = workNo.ValueKind == JsonValueKind.Number ? workNo.GetInt32() : int.Parse(workNo.GetString()!, CultureInfo.InvariantCulture);
            var list = root.GetProperty("eventList");
            messages = new AgentEventReceived[list.GetArrayLength()];
            if (messages.Length is 0 or > 64)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            long first;
            lock (lastSequence)
            {
                first = lastSequence.GetValueOrDefault(agentId) + 1;
                lastSequence[agentId] = first + messages.Length - 1;
            }

            var i = 0;
            foreach (var item in list.EnumerateArray())
            {
                DateTimeOffset? generatedAt = item.TryGetProperty("eventGenTime", out var gen) && gen.ValueKind == JsonValueKind.Number
                    ? DateTimeOffset.FromUnixTimeMilliseconds(gen.GetInt64())
                    : null;
                var content = item.TryGetProperty("content", out var c) ? c.GetRawText() : "null";
                messages[i] = new AgentEventReceived(
                    Guid.CreateVersion7(), agentId, item.GetProperty("eventType").GetString()!, first + i, content, generatedAt, receivedAt);
                i++;
            }
        }

        try
        {
            await InsertAsync(dataSource, messages);
            foreach (var message in messages)
            {
                await bus.Publish(message, context =>
                {
                    context.MessageId = message.EventId;
                    context.SetRoutingKey(AgentEventTopology.RoutingKey(message.EventType, message.AgentId));
                });
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException or MassTransitException)
        {
            // Give the numbers back: the gateway sends the same batch again, and it must get the same sequences.
            lock (lastSequence)
            {
                lastSequence[agentId] = messages[0].Sequence - 1;
            }

            http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            await http.Response.WriteAsJsonAsync(new { message = e.Message, retcode = "503" });
            return;
        }

        http.Response.ContentType = "application/json; charset=utf-8";
        await http.Response.Body.WriteAsync(SuccessBody);
    }

    /// <summary>One multi-row INSERT, autocommitted: the push's events are committed together.</summary>
    private static async Task InsertAsync(NpgsqlDataSource dataSource, AgentEventReceived[] messages)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var insert = new NpgsqlCommand(InsertSql[messages.Length], connection);
        foreach (var m in messages)
        {
            insert.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = m.EventId });
            insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = m.AgentId });
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = m.Sequence });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = m.EventType });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = m.Content, NpgsqlDbType = NpgsqlDbType.Jsonb });
            insert.Parameters.Add(new NpgsqlParameter { Value = m.GeneratedAt is { } g ? g : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            insert.Parameters.Add(new NpgsqlParameter<DateTimeOffset> { TypedValue = m.ReceivedAt });
        }

        // Prepared once per physical connection and SQL text, as CallbackHub prepares its append.
        await insert.PrepareAsync();
        await insert.ExecuteNonQueryAsync();
    }

    private static string BuildInsert(int rows)
    {
        var sql = new StringBuilder($"INSERT INTO {Table} (event_id, agent_id, sequence, event_type, content, event_gen_time, received_at) VALUES ");
        for (var r = 0; r < rows; r++)
        {
            sql.Append(r == 0 ? "(" : ",(");
            for (var c = 1; c <= Columns; c++)
            {
                sql.Append(c == 1 ? "$" : ",$").Append(((r * Columns) + c).ToString(CultureInfo.InvariantCulture));
            }

            sql.Append(')');
        }

        return sql.ToString();
    }
}
