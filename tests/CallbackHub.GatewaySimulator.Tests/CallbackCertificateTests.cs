using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CallbackHub.GatewaySimulator.Pushing;

namespace CallbackHub.GatewaySimulator.Tests;

/// <summary>HTTPS callbacks with a certificate the system does not trust.</summary>
public sealed class CallbackCertificateTests : IDisposable
{
    private readonly X509Certificate2 certificate = CreateSelfSigned();
    private readonly string caFile = Path.Combine(Path.GetTempPath(), $"callback-ca-{Guid.NewGuid():N}.pem");

    public CallbackCertificateTests()
    {
        File.WriteAllText(caFile, certificate.ExportCertificatePem());
    }

    [Fact]
    public async Task An_untrusted_callback_certificate_fails_the_push()
    {
        var response = await PushOnceAsync([]);

        Assert.Null(response.Status);
        Assert.False(response.Acknowledged);
    }

    [Fact]
    public async Task A_configured_ca_file_is_trusted()
    {
        var response = await PushOnceAsync(new() { ["Simulator:TrustedCaFile"] = caFile });

        Assert.True(response.Acknowledged, response.Error);
    }

    [Fact]
    public async Task Trust_all_accepts_any_certificate()
    {
        var response = await PushOnceAsync(new() { ["Simulator:TrustAllCertificates"] = "true" });

        Assert.True(response.Acknowledged, response.Error);
    }

    public void Dispose()
    {
        certificate.Dispose();
        File.Delete(caFile);
    }

    private async Task<PushResponse> PushOnceAsync(Dictionary<string, string?> settings)
    {
        await using var receiver = await CallbackReceiver.StartAsync(certificate);
        await using var simulator = await SimulatorHost.StartAsync(settings);
        await simulator.SignInPushAsync("1001", receiver.Url);
        var response = await simulator.State.PushOnceAsync("1001", [new SimulatedEvent("AgentState_Ready")]);
        return response!;
    }

    private static X509Certificate2 CreateSelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=callback.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        // Kestrel needs the private key in a form it can use on every platform.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }
}
