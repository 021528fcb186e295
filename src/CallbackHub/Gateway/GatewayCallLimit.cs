using Microsoft.Extensions.Options;

namespace CallbackHub.Gateway;

/// <summary>
/// Bounds the calls to the gateway in flight from this instance (<see cref="GatewayOptions.MaxConcurrentCalls"/>),
/// whoever makes them: the keeper's heartbeats, the roster's sign-ins, the API. One per instance.
/// </summary>
internal sealed class GatewayCallLimit(IOptions<GatewayOptions> options) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentCalls, options.Value.MaxConcurrentCalls);

    public async Task<IDisposable> WaitAsync(CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        return new Slot(_slots);
    }

    public void Dispose() => _slots.Dispose();

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release();
            }
        }
    }
}
