namespace CallbackHub.Gateway;

internal sealed class GatewayOptions
{
    public const string Section = "Gateway";
    public const string CallbackPath = "/callbacks/agent-events";

    /// <summary>The CC-Gateway, e.g. <c>https://10.1.2.3:8043</c>; <c>/agentgateway/resource/...</c> is appended.</summary>
    public string BaseUrl { get; set; } = "";

    /// <summary>Where the gateway reaches this service; the callBackUri is this plus <see cref="CallbackPath"/>.</summary>
    public string CallbackBaseUrl { get; set; } = "";

    /// <summary>Time limit of one call to the gateway.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public Uri CallbackUri => new(CallbackBaseUrl.TrimEnd('/') + CallbackPath);

    public static IEnumerable<string> Validate(GatewayOptions o)
    {
        if (!IsHttpUrl(o.BaseUrl))
        {
            yield return "Gateway:BaseUrl is required and must be an absolute http(s) URL, e.g. https://10.1.2.3:8043.";
        }

        if (!IsHttpUrl(o.CallbackBaseUrl))
        {
            yield return "Gateway:CallbackBaseUrl is required and must be an absolute http(s) URL at which the gateway reaches this service.";
        }
        else if (o.CallbackUri.AbsoluteUri.Length > 200)
        {
            yield return $"Gateway:CallbackBaseUrl is too long: the gateway accepts a callBackUri of at most 200 characters, and {o.CallbackUri.AbsoluteUri.Length} would be sent.";
        }

        if (o.Timeout <= TimeSpan.Zero)
        {
            yield return "Gateway:Timeout must be positive.";
        }
    }

    private static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0;
}
