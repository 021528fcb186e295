namespace CallbackHub.Hosting;

/// <summary>
/// At most a fixed number of callers inside at once; the others wait their turn. Leaving is disposing the slot, once.
/// </summary>
internal abstract class ConcurrencyLimit(int slots) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(slots, slots);

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
