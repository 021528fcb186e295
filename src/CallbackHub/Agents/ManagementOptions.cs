namespace CallbackHub.Agents;

internal sealed class ManagementOptions
{
    public const string Section = "Management";
    public const int MinimumApiKeyLength = 16;

    /// <summary>Every <c>/api/*</c> request carries it in <c>X-Api-Key</c>.</summary>
    public string ApiKey { get; set; } = "";

    public static IEnumerable<string> Validate(ManagementOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.ApiKey))
        {
            yield return "Management__ApiKey is required: every /api request must carry it in the X-Api-Key header.";
        }
        else if (o.ApiKey.Length < MinimumApiKeyLength)
        {
            yield return $"Management__ApiKey must be at least {MinimumApiKeyLength} characters long.";
        }
    }
}
