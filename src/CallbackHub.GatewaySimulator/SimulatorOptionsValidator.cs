using Microsoft.Extensions.Options;

namespace CallbackHub.GatewaySimulator;

/// <summary>Fails the boot with a sentence naming the key, instead of misbehaving at the first request.</summary>
internal sealed class SimulatorOptionsValidator : IValidateOptions<SimulatorOptions>
{
    public ValidateOptionsResult Validate(string? name, SimulatorOptions options)
    {
        var errors = new List<string>();
        RequirePositive(errors, nameof(options.GuidRotationInterval), options.GuidRotationInterval);
        RequirePositive(errors, nameof(options.GuidExpiry), options.GuidExpiry);
        RequirePositive(errors, nameof(options.HeartbeatTimeout), options.HeartbeatTimeout);
        RequirePositive(errors, nameof(options.PushRetryInterval), options.PushRetryInterval);
        RequirePositive(errors, nameof(options.PushFailTotal), options.PushFailTotal);
        RequirePositive(errors, nameof(options.PushTimeout), options.PushTimeout);
        RequirePositive(errors, nameof(options.PollWait), options.PollWait);
        if (options.AnswerLatency < TimeSpan.Zero)
        {
            errors.Add("Simulator:AnswerLatency must not be negative.");
        }

        if (options.SignOutDuration < TimeSpan.Zero)
        {
            errors.Add("Simulator:SignOutDuration must not be negative.");
        }

        if (options.MaxEventsPerPush < 1)
        {
            errors.Add("Simulator:MaxEventsPerPush must be at least 1.");
        }

        if (options.HeartbeatTimesKept is < 0 or > 10_000)
        {
            errors.Add("Simulator:HeartbeatTimesKept must be from 0 to 10000.");
        }

        if (options.MaxRecorded < 0)
        {
            errors.Add("Simulator:MaxRecorded must not be negative.");
        }

        // The server name becomes part of every Guid header value.
        if (string.IsNullOrEmpty(options.ServerName) || !options.ServerName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            errors.Add("Simulator:ServerName must be letters, digits, '-' or '_'.");
        }

        if (options.TrustedCaFile is { Length: > 0 } caFile && !File.Exists(caFile))
        {
            errors.Add($"Simulator:TrustedCaFile '{caFile}' does not exist.");
        }

        foreach (var agentId in options.Accounts.Keys.Where(id => !AgentIds.IsValid(id)))
        {
            errors.Add($"Simulator:Accounts:{agentId} is not an agent id (101-999999).");
        }

        foreach (var (agentId, account) in options.Accounts.Where(a => a.Value.Skills.Any(skill => skill <= 0)))
        {
            errors.Add($"Simulator:Accounts:{agentId}:Skills must be skill ids above 0.");
        }

        ValidatePlay(errors, options.Play);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidatePlay(List<string> errors, PlayOptions play)
    {
        if (play.Agents < 0)
        {
            errors.Add("Simulator:Play:Agents must not be negative.");
        }

        if (play.EventsPerSecond < 0 || double.IsNaN(play.EventsPerSecond) || double.IsInfinity(play.EventsPerSecond))
        {
            errors.Add("Simulator:Play:EventsPerSecond must be a number of at least 0.");
        }

        if (play.Agents > 0 && (!AgentIds.IsValid(play.FirstAgentId) || !AgentIds.IsValid(play.FirstAgentId + play.Agents - 1)))
        {
            errors.Add("Simulator:Play:FirstAgentId and Simulator:Play:Agents must keep agent ids within 101-999999.");
        }
    }

    private static void RequirePositive(List<string> errors, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"Simulator:{key} must be a positive TimeSpan such as 00:01:00.");
        }
    }
}
