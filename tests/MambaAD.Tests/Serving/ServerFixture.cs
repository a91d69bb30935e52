using System.Globalization;
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
/// A tiny untrained checkpoint (64², resnet18, depths 2-2-2-2, thresholds 0.5/0.25), loaded once into a
/// <see cref="Predictor"/>, and a real server on a free loopback port with small limits.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("mambaad-serve").FullName;
    public string CheckpointDir => Path.Combine(Dir, "ckpt");
    public Predictor Predictor { get; private set; } = null!;
    public static readonly ServerOptions Limits = new(Urls: ["http://127.0.0.1:0"], MaxRequestBytes: 1 << 20, MaxImageSide: 300,
        MaxImagePixels: 300 * 300, MaxBatchImages: 4, MaxConcurrentRequests: 2, QueueLimit: 64);
    private Running? _main;
    public Running Main => _main!;
    public HttpClient Client => _main!.Client;
    public Uri BaseAddress => _main!.Client.BaseAddress!;

    public async Task InitializeAsync()
    {
        SaveTinyCheckpoint(CheckpointDir);
        Predictor = Predictor.Load(CheckpointDir);
        _main = await StartAsync(Limits);
    }

    /// <summary>Saves the tiny untrained checkpoint (seeded, so every call saves the same weights).</summary>
    public static void SaveTinyCheckpoint(string dir, string encoderWeights = "test")
    {
        TorchSharp.torch.manual_seed(3);
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
        Checkpoint.Save(dir, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, encoderWeights,
            InputNormalization.ImageNet, ["a", "b"], new Thresholds(0.5, 0.25, "test"), null, DateTime.UtcNow.ToString("O")));
    }

    /// <summary>Starts another server over the same predictor (for tests that need other limits), ready to serve.</summary>
    internal Task<Running> StartAsync(ServerOptions options, ServerHooks? hooks = null) =>
        StartAsync(_ => Predictor, options, hooks, waitReady: true);

    /// <summary>Starts a server whose model comes from <paramref name="load"/> (run in the background once it listens).</summary>
    internal static async Task<Running> StartAsync(Func<CancellationToken, Predictor> load, ServerOptions options, ServerHooks? hooks, bool waitReady, bool ownsPredictor = false)
    {
        var app = InferenceServer.Build(load, ownsPredictor, options, hooks);
        await InferenceServer.StartAsync(app);
        var address = InferenceServer.Addresses(app).Single();
        Assert.StartsWith("http://127.0.0.1:", address);
        var running = new Running(app, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) });
        if (waitReady) Assert.True(await InferenceServer.WhenReady(app).WaitAsync(TimeSpan.FromMinutes(2)), "the server did not become ready");
        return running;
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
        public WebApplication App { get; } = app;

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
        public Task<(int Status, string Text)> RawAsync(string head, byte[] body) => Raw(Client.BaseAddress!, head, body);

        /// <summary>The samples of <c>GET /metrics</c>, keyed by name and labels as exposed (e.g. <c>x_total{code="200"}</c>).</summary>
        public async Task<Dictionary<string, double>> MetricsAsync() => ParseMetrics(await Client.GetStringAsync("/metrics"));

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }

    /// <summary>Sends a raw HTTP/1.1 request and reads the answer up to its JSON error or the end of the connection.</summary>
    public static async Task<(int Status, string Text)> Raw(Uri server, string head, byte[] body)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            for (int i = 0; i < body.Length; i += 65536) await stream.WriteAsync(body.AsMemory(i, Math.Min(65536, body.Length - i)));
        }
        catch (IOException) { }
        var text = await ReadAnswerAsync(stream, TimeSpan.FromMinutes(2));
        return (Status(text), text);
    }

    /// <summary>Reads from a raw connection until a JSON error, a complete JSON body, or the end; bounded by <paramref name="limit"/>.</summary>
    public static async Task<string> ReadAnswerAsync(NetworkStream stream, TimeSpan limit)
    {
        using var cts = new CancellationTokenSource(limit);
        var text = new StringBuilder();
        var buffer = new byte[8192];
        try
        {
            int n;
            while (!Complete(text.ToString()) && (n = await stream.ReadAsync(buffer, cts.Token)) > 0)
                text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        catch (Exception e) when (e is IOException or OperationCanceledException) { }
        return text.ToString();

        static bool Complete(string t)
        {
            int head = t.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (head < 0) return false;
            var m = System.Text.RegularExpressions.Regex.Match(t[..head], @"Content-Length: (\d+)", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
            return m.Success ? Encoding.UTF8.GetByteCount(t[(head + 4)..]) >= int.Parse(m.Groups[1].Value) : t.Contains("\"error\"");
        }
    }

    /// <summary>The status code of a raw HTTP answer, 0 when there is none.</summary>
    public static int Status(string text) => text.StartsWith("HTTP/1.1 ") && text.Length >= 12 ? int.Parse(text.AsSpan(9, 3)) : 0;

    /// <summary>Parses the Prometheus text format strictly enough to catch a malformed line.</summary>
    public static Dictionary<string, double> ParseMetrics(string text)
    {
        var samples = new Dictionary<string, double>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith("# HELP ") || line.StartsWith("# TYPE ")) continue;
            int space = line.LastIndexOf(' ');
            Assert.True(space > 0, $"metrics line without a value: '{line}'");
            Assert.Matches(@"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*=""([^""\\]|\\.)*"",?)*\})?$", line[..space]);
            samples[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return samples;
    }

    /// <summary>An RGB test picture (a gradient with a square) encoded as PNG or JPEG. The pixels are written through the
    /// bitmap's own memory (RGBA bytes): a call per pixel took seconds at 4000².</summary>
    public static unsafe byte[] Picture(int width, int height, SKEncodedImageFormat format = SKEncodedImageFormat.Png, int seed = 0)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var pixels = new Span<uint>((void*)bitmap.GetPixels(), width * height);
        uint blue = (uint)(seed * 40 % 256) << 16;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                pixels[y * width + x] = 0xFF000000u | blue | (uint)(y * 255 / height) << 8 | (uint)(x * 255 / width);
        for (int y = height / 3; y < height / 2; y++)
            pixels.Slice(y * width + width / 3, width / 2 - width / 3).Fill(0xFFFFFFFFu);
        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }
}
