using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using MambaAD.Encoders;
using MambaAD.Checkpoints;
using MambaAD.Imaging;
using MambaAD.Model;
using SkiaSharp;

// Load and image-bomb tests of the inference server, bounded in requests and time, loopback only.
//
//   dotnet run -c Release --project bench/MambaAD.Load -- [--scenario load|bombs] [--requests 5000] [--clients 16]
//       [--max-seconds 900] [--checkpoint PATH | --model tiny|official] [--image-size 256] [--heatmap]
//       [-- SERVE OPTIONS…]
//   dotnet run -c Release --project bench/MambaAD.Load -- --save-checkpoint DIR [--model tiny|official]
//
// The server is `mambaad serve` itself (the CLI's entry point) in a child process (this program with --serve), so
// the RSS figures are the server's alone. Without --checkpoint the child saves and serves an untrained model: tiny
// (64², resnet18, depths 2-2-2-2) or official (ResNet34, 256², depths 3-4-6-3: the size to plan memory for). Options
// after `--` go to `mambaad serve` (e.g. `-- --concurrency 2 --timeout 10`). The child stops (SIGTERM, as an
// orchestrator would) when its stdin closes, so it cannot outlive this program.

var opts = Args.Parse(args);
if (opts.SaveTo is { } saveTo) { Child.SaveUntrained(saveTo, opts.Model); Console.WriteLine($"saved an untrained {opts.Model} checkpoint to {saveTo}"); return 0; }
if (opts.Serve) return Child.Serve(opts);

using var server = Child.Start(opts);
var inv = CultureInfo.InvariantCulture;
Console.WriteLine($"server pid {server.Pid} at {server.Url} ({opts.Checkpoint ?? opts.Model + " model"}{(opts.ServeArgs.Length > 0 ? ", serve " + string.Join(' ', opts.ServeArgs) : "")})");
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(opts.Clients, 8), PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
{ BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(120) };
using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(opts.MaxSeconds));
return opts.Scenario switch
{
    "bombs" => await Bombs(),
    _ => await Load(),
};

// Throughput, latency and RSS under many small valid requests.
async Task<int> Load()
{
    var image = Picture(opts.ImageSize, opts.ImageSize, noiseRows: 0);
    var path = opts.Heatmap ? "/predict?heatmap=true" : "/predict";
    Console.WriteLine($"{opts.Requests} requests of a {opts.ImageSize}² PNG ({image.Length} bytes) from {opts.Clients} clients{(opts.Heatmap ? ", with heat maps" : "")}");
    // Warm-up: JIT, thread pool, libtorch allocator. RSS "before" is taken after it.
    long rssStart = server.RssKb();
    for (int i = 0; i < 2 * opts.Clients; i++) await Send(path, image, "image/png", deadline.Token);
    long rssBefore = server.RssKb();
    var run = await Run(opts.Requests, opts.Clients, _ => Send(path, image, "image/png", deadline.Token));
    long rssAfter = server.RssKb();

    var sorted = run.Latencies.Order().ToArray();
    double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
    Console.WriteLine(string.Create(inv, $"requests {run.Completed}/{opts.Requests} in {run.Seconds:F1} s{(deadline.IsCancellationRequested ? " (stopped at --max-seconds)" : "")}"));
    Console.WriteLine(string.Create(inv, $"throughput {run.Completed / run.Seconds:F1} requests/s"));
    Console.WriteLine(string.Create(inv, $"latency p50 {P(0.50):F1} ms, p99 {P(0.99):F1} ms, max {sorted.LastOrDefault():F1} ms"));
    Console.WriteLine($"statuses {Statuses(run.Statuses)}");
    Console.WriteLine(string.Create(inv, $"server RSS: at start {Mb(rssStart)}, after warm-up {Mb(rssBefore)}, after {run.Completed} requests {Mb(rssAfter)} ({(rssAfter - rssBefore) / 1024.0:+0;-0} MB), peak {Mb(server.PeakRssKb())}"));
    Console.WriteLine("RSS during the run: " + string.Join(", ", run.Samples.Select(s => $"{s.Done}: {Mb(s.RssKb)}")));
    return run.Statuses.All(s => s == 200) && run.Completed == opts.Requests ? 0 : 1;
}

// Image bombs: PNGs that declare 4096² but stop after 24 KB (each decode allocates the whole image before it fails),
// sent one at a time and then in parallel; whole 4096² images; then idle, to see whether memory goes back.
async Task<int> Bombs()
{
    var whole = Picture(4096, 4096, noiseRows: 512);
    var truncated = whole[..(24 * 1024)];
    var small = Picture(64, 64, noiseRows: 0);
    for (int i = 0; i < 4; i++) await Send("/predict", small, "image/png", deadline.Token);
    Console.WriteLine($"bombs: truncated 4096² PNG of {truncated.Length} bytes; whole 4096² PNG of {whole.Length} bytes");
    Console.WriteLine($"RSS after warm-up {Mb(server.RssKb())}");
    var phases = new (string Name, int Requests, int Clients, byte[] Body)[]
    {
        ("200 truncated, 1 client", 200, 1, truncated),
        ("8 × 50 truncated in parallel", 400, 8, truncated),
        ("8 × 5 whole 4096² in parallel", 40, 8, whole),
    };
    bool ok = true;
    foreach (var (name, requests, clients, body) in phases)
    {
        var run = await Run(requests, clients, _ => Send("/predict", body, "image/png", deadline.Token));
        Console.WriteLine(string.Create(inv, $"{name}: {run.Seconds:F1} s, statuses {Statuses(run.Statuses)}, peak RSS in the phase {Mb(run.Samples.Max(s => s.RssKb))}, at its end {Mb(server.RssKb())}"));
        ok &= run.Statuses.All(s => s is > 0 and < 500);
    }
    for (int s = 5; s <= 20; s += 5)
    {
        await Task.Delay(TimeSpan.FromSeconds(5), deadline.Token);
        Console.WriteLine(string.Create(inv, $"idle {s} s: RSS {Mb(server.RssKb())}"));
    }
    Console.WriteLine($"peak RSS of the server (VmHWM) {Mb(server.PeakRssKb())}");
    return ok ? 0 : 1;
}

// Runs `count` requests from `clients` concurrent loops, sampling the server's RSS every 50 ms.
async Task<RunResult> Run(int count, int clients, Func<int, Task<int>> send)
{
    var latencies = new double[count];
    var statuses = new int[count];
    int next = -1;
    var samples = new List<(int Done, long RssKb)>();
    var clock = Stopwatch.StartNew();
    using var done = new CancellationTokenSource();
    var monitor = Task.Run(async () =>
    {
        while (!done.IsCancellationRequested)
        {
            lock (samples) samples.Add((Math.Min(Volatile.Read(ref next) + 1, count), server.RssKb()));
            try { await Task.Delay(50, done.Token); } catch (OperationCanceledException) { }
        }
    });
    await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
    {
        int i;
        while (!deadline.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < count)
        {
            var t = Stopwatch.GetTimestamp();
            int status;
            try { status = await send(i); }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException) { status = 0; }
            latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
            statuses[i] = status;
        }
    })));
    clock.Stop();
    done.Cancel();
    await monitor;
    samples.Add((count, server.RssKb()));
    int completed = Math.Min(Volatile.Read(ref next), count);
    // RSS every tenth of the run, to see whether memory is flat rather than only its end points.
    var deciles = samples.GroupBy(s => s.Done * 10 / Math.Max(1, count)).Select(g => g.Last()).ToList();
    return new RunResult(completed, clock.Elapsed.TotalSeconds, latencies[..completed], statuses[..completed], deciles.Count > 0 ? deciles : samples);
}

async Task<int> Send(string path, byte[] body, string type, CancellationToken ct)
{
    using var content = new ByteArrayContent(body);
    content.Headers.ContentType = new MediaTypeHeaderValue(type);
    using var response = await http.PostAsync(path, content, ct);
    await response.Content.ReadAsByteArrayAsync(ct);
    return (int)response.StatusCode;
}

static string Statuses(IEnumerable<int> statuses) =>
    string.Join(", ", statuses.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{(g.Key == 0 ? "transport error" : g.Key.ToString(CultureInfo.InvariantCulture))}×{g.Count()}"));

static string Mb(long kb) => string.Create(CultureInfo.InvariantCulture, $"{kb / 1024.0:F0} MB");

// A gradient picture, its first rows noise (so that they do not compress and a truncated file stops early in them).
static byte[] Picture(int width, int height, int noiseRows)
{
    using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
    var rng = new Random(1);
    var pixels = new byte[width * height * 4];
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            int i = (y * width + x) * 4;
            bool noise = y < noiseRows;
            pixels[i] = noise ? (byte)rng.Next(256) : (byte)(x * 255 / width);
            pixels[i + 1] = noise ? (byte)rng.Next(256) : (byte)(y * 255 / height);
            pixels[i + 2] = noise ? (byte)rng.Next(256) : (byte)((x + y) & 255);
            pixels[i + 3] = 255;
        }
    Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
    using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    return data.ToArray();
}

internal sealed record RunResult(int Completed, double Seconds, double[] Latencies, int[] Statuses, List<(int Done, long RssKb)> Samples);

internal sealed record Args(string Scenario, int Requests, int Clients, int MaxSeconds, string? Checkpoint, string Model, int ImageSize, bool Heatmap, bool Serve, string[] ServeArgs, string? SaveTo = null)
{
    public static Args Parse(string[] a)
    {
        var o = new Args("load", 5000, 16, 900, null, "tiny", 256, false, false, []);
        for (int i = 0; i < a.Length; i++)
        {
            string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{a[i]} needs a value");
            if (a[i] == "--") return o with { ServeArgs = a[(i + 1)..] };
            o = a[i] switch
            {
                "--scenario" => o with { Scenario = OneOf(Next(), "--scenario", "load", "bombs") },
                "--requests" => o with { Requests = Math.Clamp(int.Parse(Next()), 1, 100_000) },
                "--clients" => o with { Clients = Math.Clamp(int.Parse(Next()), 1, 256) },
                "--max-seconds" => o with { MaxSeconds = Math.Clamp(int.Parse(Next()), 1, 3600) },
                "--checkpoint" => o with { Checkpoint = Next() },
                "--model" => o with { Model = OneOf(Next(), "--model", "tiny", "official") },
                "--image-size" => o with { ImageSize = Math.Clamp(int.Parse(Next()), 16, 2048) },
                "--heatmap" => o with { Heatmap = true },
                "--serve" => o with { Serve = true },
                "--save-checkpoint" => o with { SaveTo = Next() },
                _ => throw new ArgumentException($"unknown option {a[i]}"),
            };
        }
        return o;
    }

    private static string OneOf(string value, string option, params string[] allowed) =>
        allowed.Contains(value) ? value : throw new ArgumentException($"{option}: {string.Join(" or ", allowed)}");

    public string[] ChildArgs() => ["--serve", "--model", Model, .. Checkpoint is null ? Array.Empty<string>() : ["--checkpoint", Checkpoint], "--", .. ServeArgs];
}

/// <summary>The server process: started by the load program, stopped by it (by its own pid), and self-stopping when stdin closes.</summary>
internal sealed partial class Child : IDisposable
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
                if (line.Contains("serving on") && Address().Match(line) is { Success: true } m) return m.Value;
            return null;
        });
        if (!startup.Wait(TimeSpan.FromMinutes(3)) || startup.Result is not { } url)
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException("the server process did not start");
        }
        // Keep draining its output so that it never blocks on a full pipe.
        _ = Task.Run(() => { while (p.StandardOutput.ReadLine() is not null) { } });
        return new Child(p, url);
    }

    [GeneratedRegex(@"http://[^\s,;)]+")]
    private static partial Regex Address();

    public long RssKb() => Status("VmRSS:");
    public long PeakRssKb() => Status("VmHWM:");

    private long Status(string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
                if (line.StartsWith(key)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        }
        catch (IOException) { }
        return 0;
    }

    public void Dispose()
    {
        _process.StandardInput.Close();
        if (!_process.WaitForExit(TimeSpan.FromSeconds(60))) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    public static int Serve(Args o)
    {
        string? temp = null;
        var checkpoint = o.Checkpoint;
        if (checkpoint is null)
        {
            temp = Directory.CreateTempSubdirectory("mambaad-load").FullName;
            checkpoint = Path.Combine(temp, "ckpt");
            SaveUntrained(checkpoint, o.Model);
        }
        // When the parent closes stdin (or dies), stop the way an orchestrator does: SIGTERM to ourselves.
        new Thread(() => { Console.In.ReadToEnd(); Kill(Environment.ProcessId, 15); }) { IsBackground = true }.Start();
        try
        {
            // Loopback only: the load test never listens beyond this machine.
            return MambaAD.Cli.Program.Main(["serve", "--checkpoint", checkpoint, "--urls", "http://127.0.0.1:0", .. o.ServeArgs]);
        }
        finally
        {
            if (temp is not null) try { Directory.Delete(temp, true); } catch (IOException) { }
        }
    }

    /// <summary>An untrained checkpoint: tiny (64², resnet18, depths 2-2-2-2) or official (the paper's configuration).</summary>
    public static void SaveUntrained(string dir, string size)
    {
        TorchSharp.torch.manual_seed(0);
        var config = size == "official" ? new MambaADConfig() : new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] };
        using var model = new MambaADModel(config);
        Checkpoint.Save(dir, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "load-test",
            InputNormalization.ImageNet, ["a"], new Thresholds(0.5, 0.5, "load test"), null, DateTime.UtcNow.ToString("O")));
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
