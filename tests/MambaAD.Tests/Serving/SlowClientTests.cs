using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace MambaAD.Tests.Serving;

/// <summary>
/// Bodies are received before an inference slot is taken: slow uploaders wait in the queue, not in a slot, so a normal
/// request is served while they trickle; an upload below the minimum rate is cut off with 408.
/// </summary>
public class SlowClientTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    /// <summary>A raw connection that sends a POST head promising 100 kB, then 100 bytes every 200 ms until disposed.</summary>
    private sealed class SlowUploader : IAsyncDisposable
    {
        private readonly TcpClient _tcp = new();
        private readonly CancellationTokenSource _stop = new();
        private Task _sending = Task.CompletedTask;

        public NetworkStream Stream => _tcp.GetStream();

        public static async Task<SlowUploader> StartAsync(Uri server, int bytesPerTick = 100)
        {
            var u = new SlowUploader();
            await u._tcp.ConnectAsync(server.Host, server.Port);
            var png = ServerFixture.Picture(64, 64);
            var body = new byte[100_000];
            png.CopyTo(body, 0);
            await u.Stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {body.Length}\r\n\r\n"));
            u._sending = Task.Run(async () =>
            {
                try
                {
                    for (int i = 0; i < body.Length && !u._stop.IsCancellationRequested; i += bytesPerTick)
                    {
                        await u.Stream.WriteAsync(body.AsMemory(i, Math.Min(bytesPerTick, body.Length - i)), u._stop.Token);
                        await Task.Delay(200, u._stop.Token);
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
            });
            return u;
        }

        /// <summary>Whether the server has answered (or closed) this connection.</summary>
        public bool Answered => _tcp.Client.Poll(0, SelectMode.SelectRead);

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            await _sending;
            _tcp.Dispose();
        }
    }

    [Fact]
    public async Task Four_slow_uploaders_do_not_keep_a_normal_request_from_its_only_slot()
    {
        // One slot, a long timeout, uploads at 500 B/s (above the minimum rate): before, each uploader held a slot
        // while it uploaded and a normal request waited behind all four.
        var options = ServerFixture.Limits with { MaxConcurrentRequests = 1, QueueLimit = 8, RequestTimeout = TimeSpan.FromMinutes(5), MinUploadBytesPerSecond = 100 };
        await using var server = await f.StartAsync(options);
        var uploaders = new List<SlowUploader>();
        try
        {
            for (int i = 0; i < 4; i++) uploaders.Add(await SlowUploader.StartAsync(server.Client.BaseAddress!));
            using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
                while ((await server.MetricsAsync())["mambaad_requests_receiving"] < 4)
                    await Task.Delay(20, limit.Token);

            var png = new ByteArrayContent(ServerFixture.Picture(64, 64, seed: 5));
            png.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            var r = await server.Client.PostAsync("/predict", png);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.True(JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("score").GetDouble() >= 0);
            // Served while every uploader is still uploading (100 kB at 500 B/s takes minutes).
            Assert.All(uploaders, u => Assert.False(u.Answered));
            var metrics = await server.MetricsAsync();
            Assert.Equal(4, metrics["mambaad_requests_receiving"]);
            Assert.Equal(0, metrics["mambaad_requests_in_flight"]);
        }
        finally
        {
            foreach (var u in uploaders) await u.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_upload_below_the_minimum_rate_is_cut_off_with_408()
    {
        // 1000 B/s required after Kestrel's 5 s grace; this client sends the head and no body.
        var options = ServerFixture.Limits with { RequestTimeout = TimeSpan.FromMinutes(5), MinUploadBytesPerSecond = 1000 };
        await using var server = await f.StartAsync(options);
        await using var slow = await SlowUploader.StartAsync(server.Client.BaseAddress!, bytesPerTick: 0);
        var text = await ServerFixture.ReadAnswerAsync(slow.Stream, TimeSpan.FromMinutes(1));
        Assert.Equal(408, ServerFixture.Status(text));
        Assert.Contains("too slowly", text);
        Assert.Equal(1, (await server.MetricsAsync())["mambaad_http_errors_total{code=\"408\"}"]);
    }
}
