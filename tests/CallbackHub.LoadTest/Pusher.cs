using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace CallbackHub.LoadTest;

/// <summary>
/// Plays the gateway for N agents: each agent pushes its batches one after another to
/// <c>/callbacks/agent-events</c> with its current service_token. Open loop: push number k (over all agents) is
/// due at <c>start + k / pushRate</c> (after a linear ramp over the warm-up), and latency counts from when it was due, so a slow answer that delays the
/// next push of the same agent is charged to that push too (no coordinated omission).
/// </summary>
/// <remarks>
/// With <c>eventBudget</c> &gt; 0 (the backlog scenario) the agents stop once that many events were pushed over all of
/// them; the last push is cut to what is left.
/// </remarks>
internal sealed class Pusher(
    LoadOptions options, IReadOnlyList<AgentLedger> agents, IReadOnlyList<HttpClient> hubs, HttpClient simulator, RunCounters counters,
    double? rate = null, long eventBudget = 0)
{
    private readonly bool _budgeted = eventBudget > 0;
    private long _budgetLeft = eventBudget;

    private static readonly MediaTypeHeaderValue Json = MediaTypeHeaderValue.Parse("application/json; charset=UTF-8");

    /// <summary>Ack latency per push (ms) with the Stopwatch timestamp it was due.</summary>
    public List<(long DueAt, double Ms)> AckLatencies { get; } = new(1 << 20);

    public long Start { get; private set; }

    public async Task RunAsync()
    {
        var meanEvents = (options.MinEventsPerPush + options.MaxEventsPerPush) / 2.0;
        var pushRate = (rate ?? options.Rate) / meanEvents;
        Start = Stopwatch.GetTimestamp();
        var end = Start + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
        await Task.WhenAll(agents.Select((agent, index) => Task.Run(() => RunAgentAsync(agent, index, pushRate, end))));
    }

    private async Task RunAgentAsync(AgentLedger agent, int index, double pushRate, long end)
    {
        var random = new Random(options.Seed + agent.AgentId);
        var catalogue = new EventCatalogue(agent.AgentId, random);
        var hub = hubs[index % hubs.Count];
        long lastGenTime = 0;
        for (long k = 0; ; k++)
        {
            long dueAt;
            if (pushRate > 0)
            {
                dueAt = Start + (long)(DueSeconds(index + (k * agents.Count), pushRate) * Stopwatch.Frequency);
                var wait = RunCounters.Milliseconds(Stopwatch.GetTimestamp(), dueAt);
                if (wait > 1)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(wait));
                }
            }
            else
            {
                dueAt = Stopwatch.GetTimestamp();
            }

            if (dueAt >= end)
            {
                return;
            }

            // Strictly increasing eventGenTime per agent, as a real gateway's clock gives: consecutive batches then
            // never look like a re-send to CallbackHub's duplicate check.
            var count = random.Next(options.MinEventsPerPush, options.MaxEventsPerPush + 1);
            if (_budgeted && (count = TakeFromBudget(count)) == 0)
            {
                return;
            }

            var events = new SentEvent[count];
            var body = new StringBuilder(1024);
            var workNo = agent.AgentId.ToString(CultureInfo.InvariantCulture);
            body.Append("{\"workNo\":\"").Append(workNo).Append("\",\"eventList\":[");
            for (var i = 0; i < count; i++)
            {
                var (type, content) = catalogue.Next();
                lastGenTime = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), lastGenTime + 1);
                events[i] = new SentEvent(type, content, dueAt);
                body.Append(i == 0 ? "" : ",")
                    .Append("{\"eventType\":\"").Append(type).Append("\",\"workNo\":\"").Append(workNo)
                    .Append("\",\"eventGenTime\":").Append(lastGenTime.ToString(CultureInfo.InvariantCulture))
                    .Append(",\"content\":").Append(content).Append('}');
            }

            body.Append("]}");
            lock (agent)
            {
                // Recorded before sending: the event can reach the consumer before the answer reaches us.
                agent.Sent.AddRange(events);
            }

            await PushUntilAcceptedAsync(agent, hub, Encoding.UTF8.GetBytes(body.ToString()), events, dueAt, end);
        }
    }

    private int TakeFromBudget(int count)
    {
        while (true)
        {
            var left = Interlocked.Read(ref _budgetLeft);
            var take = (int)Math.Min(count, left);
            if (take <= 0 || Interlocked.CompareExchange(ref _budgetLeft, left - take, left) == left)
            {
                return Math.Max(0, take);
            }
        }
    }

    /// <summary>
    /// When push number <paramref name="push"/> is due: the rate ramps up linearly over the warm-up (a cold
    /// service hit at full rate builds a backlog that says more about JIT and pool warm-up than about the
    /// service), then stays at <paramref name="pushRate"/>.
    /// </summary>
    private double DueSeconds(long push, double pushRate)
    {
        var warmUp = options.WarmUp.TotalSeconds;
        var rampPushes = pushRate * warmUp / 2;
        return push < rampPushes ? Math.Sqrt(2 * warmUp * push / pushRate) : warmUp + ((push - rampPushes) / pushRate);
    }

    /// <summary>Like the gateway: the same batch again until it is accepted (here without the 10 s pause).</summary>
    private async Task PushUntilAcceptedAsync(AgentLedger agent, HttpClient hub, byte[] body, SentEvent[] events, long dueAt, long end)
    {
        var giveUpAt = end + (30 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < giveUpAt)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/callbacks/agent-events") { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = Json;
            request.Headers.TryAddWithoutValidation("service_token", agent.Token);
            request.Headers.TryAddWithoutValidation("Guid", agent.Guid);
            try
            {
                using var response = await hub.SendAsync(request);
                var answer = await response.Content.ReadAsStringAsync();
                if (response.StatusCode == HttpStatusCode.OK && answer.Contains("\"retcode\":\"0\"", StringComparison.Ordinal))
                {
                    var ms = RunCounters.Milliseconds(dueAt, Stopwatch.GetTimestamp());
                    lock (AckLatencies)
                    {
                        AckLatencies.Add((dueAt, ms));
                    }

                    lock (agent)
                    {
                        foreach (var e in events)
                        {
                            e.Acked = true;
                        }
                    }

                    return;
                }

                Interlocked.Increment(ref counters.Rejected);
                if (response.StatusCode == HttpStatusCode.Unauthorized)
                {
                    // CallbackHub rotates tokens every minute (through the gateway's heartbeat): read the new one.
                    await RefreshTokenAsync(agent);
                }
                else
                {
                    await Task.Delay(100);
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Interlocked.Increment(ref counters.Rejected);
                await Task.Delay(100);
            }

            Interlocked.Increment(ref counters.Retried);
        }
    }

    public async Task RefreshTokenAsync(AgentLedger agent)
    {
        var view = await simulator.GetFromJsonAsync<JsonObject>($"/simulator/agents/{agent.AgentId}");
        agent.Token = view!["serviceToken"]!.GetValue<string>();
        agent.Guid = view["guid"]?.GetValue<string>() ?? "";
    }
}
