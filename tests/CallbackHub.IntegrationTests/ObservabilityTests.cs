using System.Net;
using System.Text.Json.Nodes;
using CallbackHub.IntegrationTests.Infrastructure;
using CallbackHub.IntegrationTests.Support;

namespace CallbackHub.IntegrationTests;

/// <summary>Health endpoints, Prometheus metrics and the OpenAPI document tell the truth about the pipeline.</summary>
public sealed class ObservabilityTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : PipelineTest(postgres, rabbitMq)
{
    protected override IReadOnlyDictionary<string, string?> HubSettings => new Dictionary<string, string?>
    {
        ["Outbox:StatusRefresh"] = "00:00:00.250",
        ["Outbox:StalledAfter"] = "00:00:02",
    };

    [Fact]
    public async Task Live_ready_metrics_and_openapi_answer_on_a_healthy_service()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2); // the sign-in events are pushed by the gateway on its own, after the answer
        await EventRows.WaitUntilPublishedAsync(Database);

        Assert.Equal(HttpStatusCode.OK, (await HealthAsync("/health/live")).Status);
        var ready = await EventuallyAsync(() => HealthAsync("/health/ready"), h => h.Status == HttpStatusCode.OK);
        Assert.Equal(["outbox", "postgres", "rabbitmq"], ready.Body["checks"]!.AsObject().Select(c => c.Key).Order());

        // The gauges are read every Outbox__StatusRefresh: wait for a reading taken after the events were published.
        var metrics = await EventuallyAsync(MetricsAsync,
            m => Gauge(m, "callbackhub_sessions", "state=\"active\"") == 1 && Gauge(m, "callbackhub_outbox_backlog") == 0);
        Assert.True(Gauge(metrics, "callbackhub_events_stored_total") >= 2);
        Assert.Equal(0, Gauge(metrics, "callbackhub_outbox_backlog"));
        Assert.Contains("http_server_request_duration_seconds", metrics, StringComparison.Ordinal);
        // The outbox per partition (this one instance holds every one), and what it has in flight.
        Assert.Equal(0, Gauge(metrics, "callbackhub_outbox_partition_lag", $"partition=\"{Agent % 128}\""));
        Assert.Contains("owner=\"", metrics, StringComparison.Ordinal);
        Assert.Equal(0, Gauge(metrics, "callbackhub_outbox_confirms_in_flight"));
        // The sign-in events went to the broker one way or the other: straight from the commit, or read back.
        double Sent(string path) => Gauge(metrics, "callbackhub_outbox_sent_total", $"path=\"{path}\"") is var n && double.IsNaN(n) ? 0 : n;
        Assert.True(Sent("handoff") + Sent("read-back") >= 2, metrics);
        // How long they took to be sent, and to be confirmed once sent.
        Assert.Contains("callbackhub_outbox_send_delay_seconds_bucket", metrics, StringComparison.Ordinal);
        Assert.Contains("callbackhub_outbox_confirm_duration_seconds_count", metrics, StringComparison.Ordinal);
        Assert.Equal(0, Gauge(metrics, "callbackhub_outbox_queued"));
        Assert.True(Gauge(metrics, "callbackhub_outbox_lease_changes_total", "change=\"acquired\"") >= 1);

        var openApi = JsonNode.Parse(await Hub.Callbacks.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative)))!;
        Assert.NotNull(openApi["paths"]!["/api/agents/{agentId}/session"]);
    }

    [Fact]
    public async Task Without_RabbitMQ_ready_turns_unready_and_the_backlog_grows_then_drains_when_it_returns()
    {
        await SignInAsync();
        await Database.WaitForRowsAsync(2); // the sign-in events are pushed by the gateway on its own, after the answer
        await EventRows.WaitUntilPublishedAsync(Database);
        await EventuallyAsync(() => HealthAsync("/health/ready"), h => h.Status == HttpStatusCode.OK);

        await RabbitMq.StopAsync();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var (status, _) = await Gateway.PushOnceAsync(Agent, [Event("AgentState_Work"), Event("AgentState_Ready")]);
                Assert.Equal(200, status);
            }

            // Unready, saying why: the broker is away and the outbox stalls; live and accepting stay up (pushes are taken).
            // (A status read more than three rounds ago is unhealthy too, as "could not be read": on a busy machine a round
            // can be late. Wait for the reason this test is about.)
            var unready = await EventuallyAsync(() => HealthAsync("/health/ready"),
                h => h.Status == HttpStatusCode.ServiceUnavailable && Check(h, "rabbitmq") == "Unhealthy" && Check(h, "outbox") == "Unhealthy"
                     && h.Body["checks"]?["outbox"]?["description"]?.GetValue<string>().Contains("stalled", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(60));
            Assert.Contains("stalled", unready.Body["checks"]!["outbox"]!["description"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await HealthAsync("/health/live")).Status);
            Assert.Equal(HttpStatusCode.OK, (await HealthAsync("/health/accepting")).Status);

            var metrics = await EventuallyAsync(MetricsAsync, m => Gauge(m, "callbackhub_outbox_backlog") >= 6);
            Assert.True(Gauge(metrics, "callbackhub_outbox_oldest_unpublished_age_seconds") > 0);
        }
        finally
        {
            await RabbitMq.StartAsync();
        }

        await EventuallyAsync(MetricsAsync, m => Gauge(m, "callbackhub_outbox_backlog") == 0, TimeSpan.FromSeconds(60));
        await EventuallyAsync(() => HealthAsync("/health/ready"), h => h.Status == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> HealthAsync(string path)
    {
        using var response = await Hub.Callbacks.GetAsync(new Uri(path, UriKind.Relative));
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    private static string? Check((HttpStatusCode Status, JsonNode Body) health, string name) =>
        health.Body["checks"]?[name]?["status"]?.GetValue<string>();

    private Task<string> MetricsAsync() => Hub.MetricsAsync();

    private static double Gauge(string metrics, string name, string label = "") => PrometheusText.Sample(metrics, name, label);

    private static Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan? timeout = null) =>
        PrometheusText.EventuallyAsync(read, done, timeout);
}
