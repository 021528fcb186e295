using Microsoft.Extensions.Options;

namespace CallbackHub.Agents;

/// <summary>
/// Bounds the session work's share of the database connection pool (<see cref="SessionKeepingOptions.MaxConcurrentDatabaseCalls"/>),
/// so that pushes always find a connection for their commit however many heartbeats are answered at once.
/// </summary>
internal sealed class SessionDatabaseGate(IOptions<SessionKeepingOptions> options) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentDatabaseCalls);

    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken)
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
