using System.Net.Sockets;
using System.Text;
using MambaAD.Checkpoints;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Server;
using Microsoft.AspNetCore.Builder;
using SkiaSharp;

namespace MambaAD.Tests.Serving;

/// <summary>
/// A tiny untrained checkpoint (64², resnet18, depths 2-2-2-2, thresholds 0.5/0.5), loaded once into a
/// <see cref="Predictor"/>, and a real server on a free loopback port with small limits.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("mambaad-serve").FullName;
    public Predictor Predictor { get; private set; } = null!;
    public static readonly ServerOptions Limits = new(Urls: ["http://127.0.0.1:0"], MaxRequestBytes: 1 << 20, MaxImageSide: 300,
        MaxImagePixels: 300 * 300, MaxBatchImages: 4, MaxConcurrentRequests: 2, QueueLimit: 64);
    private Running? _main;
    public Running Main => _main!;
    public HttpClient Client => _main!.Client;
    public Uri BaseAddress => _main!.Client.BaseAddress!;

    public async Task InitializeAsync()
    {
        TorchSharp.torch.manual_seed(3);
        using (var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] }))
            Checkpoint.Save(Path.Combine(Dir, "ckpt"), model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "test",
                InputNormalization.ImageNet, ["a", "b"], new Thresholds(0.5, 0.25, "test"), null, DateTime.UtcNow.ToString("O")));
        Predictor = Predictor.Load(Path.Combine(Dir, "ckpt"));
        _main = await StartAsync(Limits);
    }

    /// <summary>Starts another server over the same predictor (for tests that need other limits).</summary>
    public async Task<Running> StartAsync(ServerOptions options)
    {
        var app = InferenceServer.Build(Predictor, options);
        await app.StartAsync();
        var address = InferenceServer.Addresses(app).Single();
        Assert.StartsWith("http://127.0.0.1:", address);
        return new Running(app, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) });
    }

    public async Task DisposeAsync()
    {
        if (_main is not null) await _main.DisposeAsync();
        Predictor?.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }

    /// <summary>A started server and a client for it.</summary>
    public sealed class Running(WebApplication app, HttpClient client) : IAsyncDisposable
    {
        public HttpClient Client { get; } = client;

        /// <summary>
        /// Opens a raw connection and sends the head of a POST whose body never completes (Content-Length promises
        /// more than is sent): the server holds the request until it times out or the connection closes.
        /// </summary>
        public async Task<TcpClient> StallAsync(string path)
        {
            var tcp = new TcpClient();
            await tcp.ConnectAsync(Client.BaseAddress!.Host, Client.BaseAddress.Port);
            var head = $"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n";
            await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(head + "\u0089PNG"));
            return tcp;
        }

        /// <summary>
        /// Sends a raw HTTP/1.1 request (head, then body; a server that answers early and closes is fine: write
        /// errors are ignored) and returns the status code and the response text.
        /// </summary>
        public async Task<(int Status, string Text)> RawAsync(string head, byte[] body)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(Client.BaseAddress!.Host, Client.BaseAddress.Port);
            var stream = tcp.GetStream();
            try
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
                for (int i = 0; i < body.Length; i += 65536) await stream.WriteAsync(body.AsMemory(i, Math.Min(65536, body.Length - i)));
            }
            catch (IOException) { }
            var text = new StringBuilder();
            var buffer = new byte[8192];
            int n;
            try
            {
                while (!text.ToString().Contains("\"error\"") && (n = await stream.ReadAsync(buffer)) > 0)
                    text.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            catch (IOException) { }
            var t = text.ToString();
            return (t.Length >= 12 ? int.Parse(t.AsSpan(9, 3)) : 0, t);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>An RGB test picture (a gradient with a square) encoded as PNG or JPEG.</summary>
    public static byte[] Picture(int width, int height, SKEncodedImageFormat format = SKEncodedImageFormat.Png, int seed = 0)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(x * 255 / width), (byte)(y * 255 / height), (byte)(seed * 40 % 256)));
        for (int y = height / 3; y < height / 2; y++)
            for (int x = width / 3; x < width / 2; x++)
                bitmap.SetPixel(x, y, SKColors.White);
        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }
}
