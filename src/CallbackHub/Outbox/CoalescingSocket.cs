using System.Buffers;
using System.Net.Sockets;
using RabbitMQ.Client;

namespace CallbackHub.Outbox;

/// <summary>
/// The outbox connection's socket, with its writes gathered into fewer sends. RabbitMQ.Client writes and flushes every
/// publish on its own, one <c>send</c> system call per message (about 5,000 a second at full load here, an eighth of
/// CallbackHub's CPU). Here a write only copies the bytes into a buffer and returns; one sender at a time hands everything
/// gathered so far to the socket, so while one send runs the next messages collect behind it. Bytes go out in the order
/// they were written, and a failed send fails every later write (the connection is then closed and the unconfirmed
/// messages republished, as for any lost connection). When nothing else is waiting, a message is sent as soon as the
/// sender runs: it adds a hop to the thread pool, not a timer.
/// </summary>
internal sealed class CoalescingSocket(Socket socket) : TcpClientAdapter(socket)
{
    public static ITcpClient Create(AddressFamily family) =>
        new CoalescingSocket(new Socket(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true });

    public override NetworkStream GetStream() => new CoalescingStream(Client);
}

/// <summary>A <see cref="NetworkStream"/> whose writes are sent behind the writer, gathered; reads are the socket's.</summary>
internal sealed class CoalescingStream(Socket socket) : NetworkStream(socket, ownsSocket: false)
{
    // Past this much unsent, a writer waits for the sender to take it (the socket's own buffer gives the same push-back).
    internal const int MaxUnsent = 256 * 1024;

    private readonly Lock _gate = new();
    private ArrayBufferWriter<byte> _unsent = new(16 * 1024);
    private ArrayBufferWriter<byte> _sending = new(16 * 1024);
    private bool _senderRunning;
    private Exception? _failure;
    private TaskCompletionSource? _roomWaiters;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Task wait;
        lock (_gate)
        {
            if (_failure is { } failure)
            {
                return ValueTask.FromException(new IOException("An earlier send to the broker failed.", failure));
            }

            _unsent.Write(buffer.Span);
            if (!_senderRunning)
            {
                _senderRunning = true;
                ThreadPool.UnsafeQueueUserWorkItem(static stream => _ = stream.SendAsync(), this, preferLocal: false);
            }

            if (_unsent.WrittenCount < MaxUnsent)
            {
                return ValueTask.CompletedTask;
            }

            wait = (_roomWaiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        return new ValueTask(wait.WaitAsync(cancellationToken));
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Nothing calls the synchronous writes (RabbitMQ.Client and SslStream write asynchronously); they go through the buffer
    // all the same, since a write straight to the socket would overtake what is buffered.
    public override void Write(ReadOnlySpan<byte> buffer) => WriteAsync(buffer.ToArray()).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override IAsyncResult BeginWrite(byte[] buffer, int offset, int count, AsyncCallback? callback, object? state) =>
        TaskToAsyncResult.Begin(WriteAsync(buffer, offset, count, CancellationToken.None), callback, state);

    public override void EndWrite(IAsyncResult asyncResult) => TaskToAsyncResult.End(asyncResult);

    // Nothing to wait for: what was written is on its way, and a later failure fails the connection.
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    private async Task SendAsync()
    {
        while (true)
        {
            TaskCompletionSource? room;
            lock (_gate)
            {
                if (_unsent.WrittenCount == 0 || _failure is not null)
                {
                    _senderRunning = false;
                    return;
                }

                (_unsent, _sending) = (_sending, _unsent);
                room = _roomWaiters;
                _roomWaiters = null;
            }

            room?.TrySetResult();
            try
            {
                await base.WriteAsync(_sending.WrittenMemory, CancellationToken.None);
                _sending.ResetWrittenCount();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Fail(e);
                return;
            }
        }
    }

    private void Fail(Exception e)
    {
        TaskCompletionSource? room;
        lock (_gate)
        {
            _failure ??= e;
            _senderRunning = false;
            room = _roomWaiters;
            _roomWaiters = null;
        }

        room?.TrySetException(new IOException("A send to the broker failed.", e));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Fail(new ObjectDisposedException(nameof(CoalescingStream)));
        }

        base.Dispose(disposing);
    }
}
