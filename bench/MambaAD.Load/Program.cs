using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using MambaAD.Encoders;
using MambaAD.Checkpoints;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Server;
using SkiaSharp;

// Load test of the inference server, bounded in requests and time, loopback only.
//
//   dotnet run -c Release --project bench/MambaAD.Load -- [--requests 5000] [--clients 16] [--max-seconds 900]
//       [--checkpoint PATH] [--image-size 256] [--heatmap]
//
// The server runs in a child process (this program with --serve), so the RSS figures are the server's alone. Without
// --checkpoint the child saves and serves a tiny untrained model (64², resnet18, depths 2-2-2-2). The child exits
// when its stdin closes, so it cannot outlive this program.

var opts = Args.Parse(args);
if (opts.Serve) return await Child.Serve(opts);

var image = Picture(opts.ImageSize);
using var server = Child.Start(opts);
Console.WriteLine($"server pid {server.Pid} at {server.Url}; {opts.Requests} requests of a {opts.ImageSize}² PNG ({image.Length} bytes) from {opts.Clients} clients{(opts.Heatmap ? ", with heat maps" : "")}");

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = opts.Clients, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
{ BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(60) };
var path = opts.Heatmap ? "/predict?heatmap=true" : "/predict";

// Warm-up: JIT, thread pool, libtorch allocator. RSS "before" is taken after it.
long rssStart = server.RssKb();
for (int i = 0; i < 2 * opts.Clients; i++) await Send();
long rssBefore = server.RssKb();

var latencies = new double[opts.Requests];
var statuses = new int[opts.Requests];
int next = -1, errors = 0;
var samples = new List<(int Done, long RssKb)>();
using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(opts.MaxSeconds));
var clock = Stopwatch.StartNew();
var monitor = Task.Run(async () =>
{
    // RSS every tenth of the run, to see whether memory is flat rather than only its end points.
    int lastDecile = 0;
    while (!deadline.IsCancellationRequested && Volatile.Read(ref next) < opts.Requests - 1)
    {
        int done = Math.Min(Volatile.Read(ref next) + 1, opts.Requests);
        if (done * 10 / opts.Requests > lastDecile) { lastDecile = done * 10 / opts.Requests; lock (samples) samples.Add((done, server.RssKb())); }
        try { await Task.Delay(100, deadline.Token); } catch (OperationCanceledException) { }
    }
});
await Task.WhenAll(Enumerable.Range(0, opts.Clients).Select(_ => Task.Run(async () =>
{
    int i;
    while (!deadline.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < opts.Requests)
    {
        var t = Stopwatch.GetTimestamp();
        int status;
        try { status = await Send(deadline.Token); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { status = 0; }
        latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        statuses[i] = status;
        if (status != 200) Interlocked.Increment(ref errors);
    }
})));
clock.Stop();
await monitor;
long rssAfter = server.RssKb();

int completed = Math.Min(Volatile.Read(ref next), opts.Requests);
var sorted = latencies.Take(completed).Order().ToArray();
double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
var inv = CultureInfo.InvariantCulture;
Console.WriteLine(string.Create(inv, $"requests {completed}/{opts.Requests} in {clock.Elapsed.TotalSeconds:F1} s{(deadline.IsCancellationRequested ? " (stopped at --max-seconds)" : "")}"));
Console.WriteLine(string.Create(inv, $"throughput {completed / clock.Elapsed.TotalSeconds:F1} requests/s"));
Console.WriteLine(string.Create(inv, $"latency p50 {P(0.50):F1} ms, p99 {P(0.99):F1} ms, max {sorted.LastOrDefault():F1} ms"));
Console.WriteLine($"errors {errors}" + (errors > 0 ? " (" + string.Join(", ", statuses.Take(completed).Where(s => s != 200).GroupBy(s => s).Select(g => $"{(g.Key == 0 ? "transport" : g.Key.ToString(inv))}×{g.Count()}")) + ")" : ""));
Console.WriteLine(string.Create(inv, $"server RSS: at start {rssStart / 1024.0:F0} MB, after warm-up {rssBefore / 1024.0:F0} MB, after {completed} requests {rssAfter / 1024.0:F0} MB ({(rssAfter - rssBefore) / 1024.0:+0;-0} MB)"));
Console.WriteLine("RSS during the run: " + string.Join(", ", samples.Select(s => string.Create(inv, $"{s.Done}: {s.RssKb / 1024.0:F0} MB"))));
return errors == 0 && completed == opts.Requests ? 0 : 1;

async Task<int> Send(CancellationToken ct = default)
{
    using var content = new ByteArrayContent(image);
    content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
    using var response = await http.PostAsync(path, content, ct);
    await response.Content.ReadAsByteArrayAsync(ct);
    return (int)response.StatusCode;
}

static byte[] Picture(int size)
{
    using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
    var rng = new Random(1);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            bitmap.SetPixel(x, y, new SKColor((byte)(x * 255 / size), (byte)(y * 255 / size), (byte)rng.Next(96, 160)));
    using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    return data.ToArray();
}

internal sealed record Args(int Requests, int Clients, int MaxSeconds, string? Checkpoint, int ImageSize, bool Heatmap, bool Serve)
{
    public static Args Parse(string[] a)
    {
        var o = new Args(5000, 16, 900, null, 256, false, false);
        for (int i = 0; i < a.Length; i++)
        {
            string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{a[i]} needs a value");
            o = a[i] switch
            {
                "--requests" => o with { Requests = Math.Clamp(int.Parse(Next()), 1, 100_000) },
                "--clients" => o with { Clients = Math.Clamp(int.Parse(Next()), 1, 256) },
                "--max-seconds" => o with { MaxSeconds = Math.Clamp(int.Parse(Next()), 1, 3600) },
                "--checkpoint" => o with { Checkpoint = Next() },
                "--image-size" => o with { ImageSize = Math.Clamp(int.Parse(Next()), 16, 2048) },
                "--heatmap" => o with { Heatmap = true },
                "--serve" => o with { Serve = true },
                _ => throw new ArgumentException($"unknown option {a[i]}"),
            };
        }
        return o;
    }

    public string[] ChildArgs() => ["--serve", .. Checkpoint is null ? Array.Empty<string>() : ["--checkpoint", Checkpoint]];
}

/// <summary>The server process: started by the load program, killed by it (by its own pid), and self-stopping when stdin closes.</summary>
internal sealed class Child : IDisposable
{
    private readonly Process _process;
    public int Pid => _process.Id;
    public string Url { get; }

    private Child(Process p, string url) { _process = p; Url = url; }

    public static Child Start(Args o)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        // Under `dotnet MambaAD.Load.dll` the process path is dotnet itself: pass the assembly.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(Child).Assembly.Location);
        foreach (var a in o.ChildArgs()) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var startup = Task.Run(() =>
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null)
                if (line.StartsWith("listening ")) return line["listening ".Length..];
            return null;
        });
        if (!startup.Wait(TimeSpan.FromMinutes(3)) || startup.Result is not { } url)
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException("the server process did not start");
        }
        return new Child(p, url);
    }

    public long RssKb()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        return 0;
    }

    public void Dispose()
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit(TimeSpan.FromSeconds(20))) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    public static async Task<int> Serve(Args o)
    {
        string? temp = null;
        var checkpoint = o.Checkpoint;
        if (checkpoint is null)
        {
            temp = Directory.CreateTempSubdirectory("mambaad-load").FullName;
            checkpoint = Path.Combine(temp, "ckpt");
            TorchSharp.torch.manual_seed(0);
            using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] });
            Checkpoint.Save(checkpoint, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "load-test",
                InputNormalization.ImageNet, ["a"], new Thresholds(0.5, 0.5, "load test"), null, DateTime.UtcNow.ToString("O")));
        }
        try
        {
            using var predictor = Predictor.Load(checkpoint);
            // Loopback only: the load test never listens beyond this machine.
            await using var app = InferenceServer.Build(predictor, new ServerOptions(Urls: ["http://127.0.0.1:0"]));
            await app.StartAsync();
            Console.WriteLine($"listening {InferenceServer.Addresses(app).Single()}");
            Console.Out.Flush();
            await Console.In.ReadToEndAsync(); // until the parent closes stdin (or dies)
            await app.StopAsync();
            return 0;
        }
        finally
        {
            if (temp is not null) try { Directory.Delete(temp, true); } catch (IOException) { }
        }
    }
}
