namespace CallbackHub.Outbox;

internal sealed class RabbitMqOptions
{
    /// <summary>From <c>ConnectionStrings__RabbitMq</c>: <c>amqp://user:pass@host:port/vhost</c>.</summary>
    public string ConnectionString { get; set; } = "";

    public static IEnumerable<string> Validate(RabbitMqOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.ConnectionString))
        {
            yield return "ConnectionStrings__RabbitMq is required (amqp://user:pass@host:port/vhost).";
        }
        else if (!RabbitMqAddress.TryParse(o.ConnectionString, out _))
        {
            yield return "ConnectionStrings__RabbitMq must be an absolute amqp:// or amqps:// URI, e.g. amqp://user:pass@rabbitmq:5672/.";
        }
    }
}
