using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CallbackHub.Hosting;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;

namespace CallbackHub.Gateway;

internal static class GatewayRegistration
{
    public static IServiceCollection AddGatewayClient(this IServiceCollection services)
    {
        services.AddValidatedOptions<GatewayOptions>(GatewayOptions.Section, GatewayOptions.Validate);
        services.AddSingleton<GatewayCallLimit>();
        services.AddHttpClient<GatewayClient>((provider, http) =>
            {
                var options = provider.GetRequiredService<IOptions<GatewayOptions>>().Value;
                http.BaseAddress = new Uri(options.BaseUrl.TrimEnd('/') + "/");
                // The resilience pipeline below owns time limits.
                http.Timeout = Timeout.InfiniteTimeSpan;
            })
            .ConfigurePrimaryHttpMessageHandler(provider =>
            {
                var handler = new SocketsHttpHandler { UseCookies = false };
                handler.SslOptions.RemoteCertificateValidationCallback =
                    CertificateValidator(provider.GetRequiredService<IOptions<GatewayOptions>>().Value);
                return handler;
            })
            .AddStandardResilienceHandler()
            .Configure((HttpStandardResilienceOptions resilience, IServiceProvider provider) =>
            {
                var timeout = provider.GetRequiredService<IOptions<GatewayOptions>>().Value.Timeout;
                // Sign-in, heartbeat and sign-out change the gateway's state: never repeat them blindly (a repeated
                // sign-in that had in fact succeeded would be answered "already signed in").
                resilience.Retry.DisableForUnsafeHttpMethods();
                resilience.AttemptTimeout.Timeout = timeout;
                resilience.TotalRequestTimeout.Timeout = timeout;
                resilience.CircuitBreaker.SamplingDuration = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(30).Ticks, timeout.Ticks * 2));
            });
        return services;
    }

    /// <summary>
    /// The system store always counts; a configured thumbprint pins one certificate (chain and name ignored, as
    /// pinning means exactly this certificate); a configured CA file adds roots, the host name still has to match.
    /// Null (the platform's own validation) when nothing is configured.
    /// </summary>
    private static RemoteCertificateValidationCallback? CertificateValidator(GatewayOptions options)
    {
        var thumbprint = options.TrustedCertificateThumbprint?.Replace(":", "", StringComparison.Ordinal);
        if (string.IsNullOrEmpty(thumbprint) && string.IsNullOrEmpty(options.TrustedCaFile))
        {
            return null;
        }

        var authorities = new X509Certificate2Collection();
        if (!string.IsNullOrEmpty(options.TrustedCaFile))
        {
            authorities.ImportFromPemFile(options.TrustedCaFile);
        }

        return (_, certificate, presented, errors) =>
        {
            if (errors == SslPolicyErrors.None)
            {
                return true;
            }

            if (certificate is null)
            {
                return false;
            }

            using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            if (!string.IsNullOrEmpty(thumbprint)
                && (string.Equals(thumbprint, leaf.GetCertHashString(HashAlgorithmName.SHA256), StringComparison.OrdinalIgnoreCase)
                    || string.Equals(thumbprint, leaf.Thumbprint, StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }

            return errors == SslPolicyErrors.RemoteCertificateChainErrors && authorities.Count > 0 && ChainsTo(leaf, presented, authorities);
        };
    }

    private static bool ChainsTo(X509Certificate2 leaf, X509Chain? presented, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        // Private CAs rarely publish revocation lists; an unreachable CRL must not break the gateway connection.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(leaf);
    }
}
