using System.Diagnostics.CodeAnalysis;

namespace CallbackHub.ContainerTests.Infrastructure;

/// <summary>
/// Tests that run the README's commands in the checkout itself: they write deploy/publish and build or start the
/// compose demo's images, so they run one after another (other test classes still run beside them).
/// </summary>
[CollectionDefinition(Name)]
[SuppressMessage("Naming", "CA1711", Justification = "xunit's own term: this is a test collection definition.")]
public sealed class CheckoutCollection
{
    public const string Name = "The checkout's own deploy/publish and demo";
}
