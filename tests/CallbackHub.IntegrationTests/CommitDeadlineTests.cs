using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>A push that took longer than Callbacks__CommitWithin to arrive is answered 503 and not stored: committed now, it
/// could land after the gateway's re-send of it.</summary>
public sealed class CommitDeadlineTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?> { ["Callbacks:CommitWithin"] = "00:00:01" };

    [Fact]
    public async Task A_push_whose_body_arrived_past_the_commit_deadline_is_answered_503_and_not_stored()
    {
        var token = await SignInAsync();
        await Database.WaitForRowsAsync(2);

        Assert.StartsWith("HTTP/1.1 503", await PushSlowlyAsync(token, TimeSpan.FromSeconds(1.5)));
        await Task.Delay(300);
        Assert.Equal(2, (await EventRows.ReadAsync(Database, Agent)).Count);

        // The gateway's re-send, on time, is stored.
        Assert.StartsWith("HTTP/1.1 200", await PushSlowlyAsync(token, TimeSpan.Zero));
        Assert.Equal("AgentState_Work", (await Database.WaitForRowsAsync(3, Agent))[^1].EventType);
    }

    private async Task<string> PushSlowlyAsync(string token, TimeSpan pause)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(Hub.BaseUri.Host, Hub.BaseUri.Port);
        await using var stream = client.GetStream();
        var body = System.Text.Encoding.UTF8.GetBytes(
            $$"""{"workNo":"{{Agent}}","eventList":[{"eventType":"AgentState_Work","workNo":"{{Agent}}","eventGenTime":1700000000000}]}""");
        var head = $"POST /callbacks/agent-events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nservice_token: {token}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(head).Concat(body.Take(body.Length / 2)).ToArray());
        await Task.Delay(pause);
        await stream.WriteAsync(body.Skip(body.Length / 2).ToArray());
        using var reader = new StreamReader(stream);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        return await reader.ReadToEndAsync(cancel.Token);
    }
}
