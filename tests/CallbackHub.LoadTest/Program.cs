using System.Globalization;
using CallbackHub.LoadTest;
using CallbackHub.LoadTest.Sessions;

// Drives N signed-in agents against CallbackHub (separate processes) and prints one table; see README.md.
// --mode sessions measures keeping N agents signed in instead (Sessions/SessionsRun.cs).
// --target both compares CallbackHub with a plain receiver (CompareRun.cs); --scenario backlog measures a backlog drain
// (BacklogRun.cs). The plain receiver itself is this tool started again with --serve-plain-receiver (PlainReceiver.cs).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
if (args is [PlainReceiver.Flag])
{
    await PlainReceiver.RunAsync();
    return;
}

var options = LoadOptions.Parse(args);
var runId = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
if (options.Mode == LoadMode.Sessions)
{
    await SessionsRun.RunAsync(options, runId);
    return;
}

var loadBefore = Machine.LoadAverage();
Console.Error.WriteLine($"[{runId}] load average {loadBefore}");
var lab = new Lab(options, runId);
if (options.Scenario == Scenario.Backlog)
{
    await BacklogRun.RunAsync(lab, loadBefore);
}
else if (options.Target == Target.Both)
{
    await CompareRun.RunAsync(lab, loadBefore);
}
else
{
    double? publishCeiling = null, commitCeiling = null;
    if (options.Baselines)
    {
        Console.Error.WriteLine($"Baseline: confirmed publishes, {options.Concurrency} in flight, {options.BaselineDuration.TotalSeconds} s…");
        publishCeiling = await Baselines.PublishCeilingAsync(options.RabbitMq, options.Concurrency, options.BaselineDuration);
        Console.Error.WriteLine($"Baseline: single-row commits, {options.Concurrency} connections, {options.BaselineDuration.TotalSeconds} s…");
        commitCeiling = await Baselines.CommitCeilingAsync(options.Postgres, options.Concurrency, options.BaselineDuration);
    }

    var leg = await PushLeg.RunAsync(lab, new LegSpec(options.Target == Target.Plain ? "plain" : "hub", options.Target, options.Rate));
    Report.Print(options, runId, leg, publishCeiling, commitCeiling, loadBefore, Machine.LoadAverage());
}

Console.Error.WriteLine($"Logs: {lab.LogDirectory}");
