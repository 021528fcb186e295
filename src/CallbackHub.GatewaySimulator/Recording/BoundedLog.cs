namespace CallbackHub.GatewaySimulator.Recording;

/// <summary>A thread-safe record of the newest entries; a load test must not grow it without bound.</summary>
internal sealed class BoundedLog<T>(int capacity)
{
    private readonly Lock gate = new();
    private readonly Queue<T> items = new();

    public void Add(T item)
    {
        lock (gate)
        {
            items.Enqueue(item);
            while (items.Count > capacity)
            {
                items.Dequeue();
            }
        }
    }

    public IReadOnlyList<T> Snapshot(Func<T, bool>? filter = null)
    {
        lock (gate)
        {
            return filter is null ? [.. items] : [.. items.Where(filter)];
        }
    }

    public void Clear()
    {
        lock (gate)
        {
            items.Clear();
        }
    }
}
