using CallbackHub.Contracts;
using CallbackHub.Hosting;
using MassTransit;
using Microsoft.Extensions.Options;

namespace CallbackHub.Publishing;

internal static class PublishingRegistration
{
    public static IServiceCollection AddAgentEventPublishing(this IServiceCollection services)
    {
        services.AddValidatedOptions<RabbitMqOptions>("RabbitMq", RabbitMqOptions.Validate)
            .Configure<IConfiguration>((o, configuration) => o.ConnectionString = configuration.GetConnectionString("RabbitMq") ?? "");
        services.AddValidatedOptions<OutboxOptions>(OutboxOptions.Section, OutboxOptions.Validate);
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<OutboxLeadership>();

        services.AddMassTransit(bus => bus.UsingRabbitMq((context, rabbit) =>
        {
            var connectionString = context.GetRequiredService<IOptions<RabbitMqOptions>>().Value.ConnectionString;
            if (!RabbitMqAddress.TryParse(connectionString, out var address))
            {
                throw new InvalidOperationException("ConnectionStrings__RabbitMq must be an absolute amqp:// or amqps:// URI.");
            }

            rabbit.Host(address.Host, (ushort)address.Port, address.VirtualHost, host =>
            {
                host.Username(address.Username);
                host.Password(address.Password);
                if (address.UseTls)
                {
                    host.UseSsl(_ => { });
                }
            });
            // A topic exchange, routed by "{category}.{eventType}.{agentId}", so consumers can take a subset.
            rabbit.Publish<AgentEventReceived>(p => p.ExchangeType = RabbitMQ.Client.ExchangeType.Topic);
        }));
        // Start (and keep accepting pushes) while the broker is down; the outbox catches up when it returns.
        services.AddOptions<MassTransitHostOptions>().Configure(o =>
        {
            o.WaitUntilStarted = false;
            o.StopTimeout = TimeSpan.FromSeconds(30);
        });
        // Registered after the bus: hosted services stop in reverse order, so the dispatcher's last flush
        // happens while the bus is still up.
        services.AddHostedService<OutboxDispatcher>();
        return services;
    }
}
