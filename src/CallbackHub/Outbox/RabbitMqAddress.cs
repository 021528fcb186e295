using System.Diagnostics.CodeAnalysis;

namespace CallbackHub.Outbox;

/// <summary>The parts of an <c>amqp://user:pass@host:port/vhost</c> URI, as MassTransit's host wants them.</summary>
internal sealed record RabbitMqAddress(string Host, int Port, string VirtualHost, string Username, string Password, bool UseTls)
{
    public static bool TryParse(string value, [NotNullWhen(true)] out RabbitMqAddress? address)
    {
        address = null;
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps") || uri.Host.Length == 0)
        {
            return false;
        }

        var tls = uri.Scheme == "amqps";
        var userInfo = uri.UserInfo.Split(':', 2);
        var user = userInfo[0].Length > 0 ? Uri.UnescapeDataString(userInfo[0]) : "guest";
        var pass = userInfo.Length > 1 ? Uri.UnescapeDataString(userInfo[1]) : "guest";
        // Per the RabbitMQ URI spec an empty path means the default vhost "/"; "/%2f" spells it explicitly.
        var path = uri.AbsolutePath.TrimStart('/');
        var vhost = path.Length == 0 ? "/" : Uri.UnescapeDataString(path);
        var port = uri.IsDefaultPort || uri.Port < 0 ? (tls ? 5671 : 5672) : uri.Port;
        address = new RabbitMqAddress(uri.Host, port, vhost, user, pass, tls);
        return true;
    }

    /// <summary>A RabbitMQ.Client factory for this address; the caller adds what its connection needs beyond that.</summary>
    public RabbitMQ.Client.ConnectionFactory ConnectionFactory(string clientName, TimeSpan connectTimeout) => new()
    {
        HostName = Host,
        Port = Port,
        VirtualHost = VirtualHost,
        UserName = Username,
        Password = Password,
        ClientProvidedName = clientName,
        RequestedConnectionTimeout = connectTimeout,
        Ssl = { Enabled = UseTls, ServerName = Host },
    };
}
