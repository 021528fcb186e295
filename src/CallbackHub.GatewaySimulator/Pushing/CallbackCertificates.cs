using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace CallbackHub.GatewaySimulator.Pushing;

/// <summary>
/// Which HTTPS callbacks the push client trusts: the system store, plus a configured CA (so a demo can
/// use a private CA), or anything at all (the gateway's eventpush.ssl.trustAll).
/// </summary>
internal static class CallbackCertificates
{
    public static RemoteCertificateValidationCallback? CreateValidator(SimulatorOptions options)
    {
        if (options.TrustAllCertificates)
        {
#pragma warning disable CA5359 // Deliberate and opt-in: the gateway's eventpush.ssl.trustAll, for demos with self-signed callbacks.
            return (_, _, _, _) => true;
#pragma warning restore CA5359
        }

        if (string.IsNullOrEmpty(options.TrustedCaFile))
        {
            return null;
        }

        var authorities = LoadAuthorities(options.TrustedCaFile);
        return (_, certificate, chain, errors) =>
            errors == SslPolicyErrors.None
            || (errors == SslPolicyErrors.RemoteCertificateChainErrors
                && certificate is not null
                && ChainsTo(certificate, chain, authorities));
    }

    private static bool ChainsTo(X509Certificate certificate, X509Chain? presented, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        if (certificate is X509Certificate2 leaf)
        {
            return chain.Build(leaf);
        }

        using var copy = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(copy);
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        var authorities = new X509Certificate2Collection();
        if (File.ReadAllText(path).Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            authorities.ImportFromPemFile(path);
        }
        else
        {
            authorities.Add(X509CertificateLoader.LoadCertificateFromFile(path));
        }

        return authorities;
    }
}
