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

    /// <summary>
    /// Calls to the gateway in flight at once, from this instance (heartbeats, sign-ins, sign-outs, skills). Keeping N
    /// agents needs about N × latency ÷ heartbeat interval: 10,000 × 0.15 s ÷ 30 s = 50; the default leaves twice that.
    /// </summary>
    public int MaxConcurrentCalls { get; set; } = 100;

    /// <summary>PEM file of CA certificates trusted for the gateway's HTTPS, besides the system store (a private CA).</summary>
    public string? TrustedCaFile { get; set; }

    /// <summary>SHA-256 (or SHA-1) thumbprint, hex, of the one gateway certificate trusted as is (a self-signed gateway).</summary>
    public string? TrustedCertificateThumbprint { get; set; }

    public Uri CallbackUri => new(CallbackBaseUrl.TrimEnd('/') + CallbackPath);

    public static IEnumerable<string> Validate(GatewayOptions o)
    {
        if (!IsHttpUrl(o.BaseUrl))
        {
            yield return "Gateway__BaseUrl is required and must be an absolute http(s) URL, e.g. https://10.1.2.3:8043.";
        }

        if (!IsHttpUrl(o.CallbackBaseUrl))
        {
            yield return "Gateway__CallbackBaseUrl is required and must be an absolute http(s) URL at which the gateway reaches this service.";
        }
        else if (o.CallbackUri.AbsoluteUri.Length > 200)
        {
            yield return $"Gateway__CallbackBaseUrl is too long: the gateway accepts a callBackUri of at most 200 characters, and {o.CallbackUri.AbsoluteUri.Length} would be sent.";
        }

        if (o.Timeout <= TimeSpan.Zero)
        {
            yield return "Gateway__Timeout must be positive.";
        }

        if (o.MaxConcurrentCalls is < 1 or > 10_000)
        {
            yield return "Gateway__MaxConcurrentCalls must be between 1 and 10000.";
        }

        if (!string.IsNullOrEmpty(o.TrustedCaFile) && !File.Exists(o.TrustedCaFile))
        {
            yield return $"Gateway__TrustedCaFile names '{o.TrustedCaFile}', which does not exist (a PEM file of CA certificates).";
        }
        else if (!string.IsNullOrEmpty(o.TrustedCaFile) && !HasPemCertificate(o.TrustedCaFile))
        {
            yield return $"Gateway__TrustedCaFile '{o.TrustedCaFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).";
        }

        if (!string.IsNullOrEmpty(o.TrustedCertificateThumbprint)
            && (o.TrustedCertificateThumbprint.Replace(":", "", StringComparison.Ordinal).Length is not (40 or 64)
                || !o.TrustedCertificateThumbprint.Replace(":", "", StringComparison.Ordinal).All(char.IsAsciiHexDigit)))
        {
            yield return "Gateway__TrustedCertificateThumbprint must be the certificate's SHA-256 (64) or SHA-1 (40) hex digits.";
        }
    }

    private static bool HasPemCertificate(string path)
    {
        try
        {
            var certificates = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
            certificates.ImportFromPemFile(path);
            var found = certificates.Count > 0;
            foreach (var certificate in certificates)
            {
                certificate.Dispose();
            }

            return found;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }

    private static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0;
}
