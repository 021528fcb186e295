using CallbackHub.Hosting;

namespace CallbackHub.Outbox;

/// <summary>
/// The transactional outbox, all of it: pushes are committed to <c>agent_events</c> (<see cref="EventStore"/>) and published
/// from there to RabbitMQ (<see cref="OutboxDispatcher"/>) by whichever instance holds the agent's partition
/// (<see cref="OutboxPartitions"/>). It is our own: MassTransit's transactional outbox needs MassTransit.EntityFrameworkCore,
/// which is not available to us, and its relay is measured at a few hundred messages per second (MassTransit issue #5114),
/// where this one must keep up with tens of thousands of agents: group commits, an append-only event table with progress
/// kept per agent, partitions leased on the database's clock, and confirms tracked in flight.
/// </summary>
internal static class OutboxRegistration
{
    public static IServiceCollection AddOutbox(this IServiceCollection services)
    {
        services.AddValidatedOptions<RabbitMqOptions>("RabbitMq", RabbitMqOptions.Validate)
            .Configure<IConfiguration>((o, configuration) => o.ConnectionString = configuration.GetConnectionString("RabbitMq") ?? "");
        services.AddValidatedOptions<OutboxOptions>(OutboxOptions.Section, OutboxOptions.Validate);
        services.AddSingleton<OutboxPartitions>();
        services.AddSingleton<OutboxWakeups>();
        services.AddSingleton(provider => new OutboxBackpressure(
            provider.GetRequiredService<OutboxPartitions>(), provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<OutboxOptions>>()));
        services.AddSingleton<EventStore>();
        services.AddSingleton<OutboxBroker>();
        services.AddSingleton<OutboxMetrics>();
        services.AddSingleton<OutboxDispatcher>();
        services.AddHostedService(provider => provider.GetRequiredService<OutboxDispatcher>());
        services.AddSingleton<OutboxMonitor>();
        services.AddHostedService(provider => provider.GetRequiredService<OutboxMonitor>());
        return services;
    }
}
