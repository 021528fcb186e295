namespace CallbackHub.Agents;

/// <summary>
/// The skill queues an agent takes calls from, applied with the gateway's <c>resetskill</c> after every sign-in
/// (docs/gateway-protocol.md §1): the agent's configured queues (<c>auto</c>), or a list of skill ids.
/// </summary>
internal sealed record SkillQueues
{
    /// <summary>True: the skill queues configured for the agent at the gateway (<c>autoflag</c> true).</summary>
    public bool Auto { get; init; }

    /// <summary>The skill ids to sign in to when <see cref="Auto"/> is false.</summary>
    public IReadOnlyList<int>? Ids { get; init; }

    /// <summary>The gateway's <c>phonelinkage</c> for the skill sign-in.</summary>
    public bool PhoneLinkage { get; init; }

    public string? Validate()
    {
        if (!Auto && Ids is not { Count: > 0 })
        {
            return "skills must have auto: true or a non-empty list of ids.";
        }

        if (Auto && Ids is { Count: > 0 })
        {
            return "skills takes either auto: true or a list of ids, not both.";
        }

        if (Ids is { } ids && (ids.Any(id => id <= 0) || string.Join(';', ids).Length > 4000))
        {
            return "skills.ids must be positive numbers, at most 4000 characters when joined with ';'.";
        }

        return null;
    }
}
