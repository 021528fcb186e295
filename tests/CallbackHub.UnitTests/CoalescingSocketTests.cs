using System.Net;
using System.Net.Sockets;
using CallbackHub.Outbox;

namespace CallbackHub.UnitTests;

/// <summary>The outbox's socket sends what it is given in order, in fewer sends, holds writers back when far behind, and fails loudly.</summary>
public sealed class CoalescingSocketTests
{
    [Fact]
    public async Task Every_byte_arrives_in_the_order_it_was_written()
    {
        var (client, server) = await ConnectAsync();
        using (client)
        using (server)
        await using (var stream = client.GetStream())
        await using (var peer = new NetworkStream(server))
        {
            Assert.IsType<CoalescingStream>(stream);
            var written = new List<byte>();
            for (var i = 0; i < 20_000; i++)
            {
                // Messages of different lengths, each byte saying where it belongs.
                var message = Enumerable.Range(0, 1 + (i % 300)).Select(j => (byte)((written.Count + j) % 251)).ToArray();
                written.AddRange(message);
                await stream.WriteAsync(message);
                await stream.FlushAsync();
            }

            var received = new byte[written.Count];
            await peer.ReadExactlyAsync(received).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(written.ToArray(), received);
        }
    }

    [Fact]
    public async Task A_writer_far_ahead_of_the_socket_waits_until_the_peer_reads()
    {
        var (client, server) = await ConnectAsync();
        using (client)
        using (server)
        await using (var stream = client.GetStream())
        await using (var peer = new NetworkStream(server))
        {
            // The peer reads nothing: the kernel's buffers fill, then the bytes waiting here pass the limit and a write
            // stays unfinished.
            var chunk = new byte[64 * 1024];
            Task? pending = null;
            var total = 0L;
            for (var i = 0; i < 2000 && pending is null; i++)
            {
                var write = stream.WriteAsync(chunk).AsTask();
                total += chunk.Length;
                if (!write.IsCompleted && await Task.WhenAny(write, Task.Delay(500)) != write)
                {
                    pending = write;
                }
            }

            Assert.NotNull(pending);

            var drained = new byte[total];
            var read = peer.ReadExactlyAsync(drained).AsTask();
            await pending.WaitAsync(TimeSpan.FromSeconds(30));
            await read.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task Once_a_send_fails_every_later_write_fails()
    {
        var (client, server) = await ConnectAsync();
        using (client)
        await using (var stream = client.GetStream())
        {
            server.LingerState = new LingerOption(true, 0); // closed with a reset: the next sends fail
            server.Dispose();
            await Task.Delay(100);

            var failed = await Assert.ThrowsAnyAsync<IOException>(async () =>
            {
                for (var i = 0; i < 1000; i++)
                {
                    await stream.WriteAsync(new byte[1024]);
                    await Task.Delay(5);
                }
            }).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("send to the broker failed", failed.Message, StringComparison.Ordinal);
            await Assert.ThrowsAnyAsync<IOException>(async () => await stream.WriteAsync(new byte[1]));
        }
    }

    private static async Task<(CoalescingSocket Client, Socket Server)> ConnectAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = (CoalescingSocket)CoalescingSocket.Create(AddressFamily.InterNetwork);
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndPoint!).Port);
        return (client, await accept);
    }
}
