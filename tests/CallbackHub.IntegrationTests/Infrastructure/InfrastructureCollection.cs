using System.Diagnostics.CodeAnalysis;

namespace CallbackHub.IntegrationTests.Infrastructure;

/// <summary>
/// Tests that need PostgreSQL or RabbitMQ join this collection: the containers start once per run, and the
/// collection's tests run one after another (some of them stop and start the containers).
/// </summary>
[CollectionDefinition(Name)]
[SuppressMessage("Naming", "CA1711", Justification = "xunit's own term: this is a test collection definition.")]
public sealed class InfrastructureCollection : ICollectionFixture<PostgresFixture>, ICollectionFixture<RabbitMqFixture>
{
    public const string Name = "infrastructure";
}
