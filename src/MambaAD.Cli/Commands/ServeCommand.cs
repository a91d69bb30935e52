using System.CommandLine;
using MambaAD.Inference;
using MambaAD.Server;
using Microsoft.Extensions.Hosting;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad serve</c>: the HTTP inference server over one checkpoint (see <see cref="InferenceServer"/>).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var defaults = new ServerOptions();
        var urls = new Option<string>("--urls") { Description = "Listening addresses, ';'-separated: http://IP:PORT, http://localhost:PORT or http://*:PORT for every interface (loopback by default; port 0 picks a free one)", DefaultValueFactory = _ => ServerOptions.DefaultUrl };
        var allowedHosts = new Option<string>("--allowed-hosts") { Description = "Host names the server answers to, ';'-separated (others get 421; browser pages of other origins 403), against DNS rebinding; * allows any host (behind an ingress or on a cluster network), *.example.com a domain", DefaultValueFactory = _ => string.Join(';', ServerOptions.LoopbackHosts) };
        var threshold = new Option<double?>("--threshold") { Description = "Image threshold for is_anomalous instead of the checkpoint's" };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "Largest request body", DefaultValueFactory = _ => defaults.MaxRequestBytes };
        var maxSide = new Option<int>("--max-image-side") { Description = "Largest image width or height, read from its header before decoding", DefaultValueFactory = _ => defaults.MaxImageSide };
        var concurrency = new Option<int>("--concurrency") { Description = "Prediction requests decoded and scored at once", DefaultValueFactory = _ => defaults.MaxConcurrentRequests };
        var queue = new Option<int>("--queue") { Description = "Prediction requests admitted beyond those, receiving their body or waiting for a slot (then 503)", DefaultValueFactory = _ => defaults.QueueLimit };
        var timeout = new Option<double>("--timeout") { Description = "Seconds a prediction request may take from its headers to its answer, upload and queueing included (then 504)", DefaultValueFactory = _ => 30 };
        var minRate = new Option<double>("--min-upload-rate") { Description = "Slowest accepted upload in bytes/s after a 5 s grace (then 408); 0 turns the check off", DefaultValueFactory = _ => defaults.MinUploadBytesPerSecond };
        var command = new Command("serve", "HTTP inference server: POST /predict, POST /predict/batch, GET /health (ready), GET /health/live, GET /metrics, GET /model. SIGTERM or Ctrl+C drains the requests in progress, then exits 0.")
        { urls, allowedHosts, threshold, maxBytes, maxSide, concurrency, queue, timeout, minRate };
        ckpt.AddTo(command);
        // Synchronous: SIGINT and SIGTERM are left to the web host alone (not System.CommandLine's cancellation, with
        // its own grace period), which stops accepting, drains admitted requests (each ends within --timeout) and returns.
        command.SetAction(parse =>
        {
            var options = new ServerOptions(
                Urls: Split(parse.GetValue(urls)!),
                MaxRequestBytes: parse.GetValue(maxBytes), MaxImageSide: parse.GetValue(maxSide),
                MaxConcurrentRequests: parse.GetValue(concurrency), QueueLimit: parse.GetValue(queue),
                RequestTimeout: ServerOptions.TimeoutFromSeconds(parse.GetValue(timeout)),
                MinUploadBytesPerSecond: parse.GetValue(minRate),
                AllowedHosts: Split(parse.GetValue(allowedHosts)!),
                ImageThreshold: parse.GetValue(threshold)).Validate();
            var (path, official, device) = ckpt.Read(parse);
            using var app = InferenceServer.Build(_ => Predictor.Load(path, official, device), options);
            InferenceServer.StartAsync(app).GetAwaiter().GetResult();
            var addresses = string.Join(", ", InferenceServer.Addresses(app));
            Console.WriteLine($"listening on {addresses}; loading {path}");
            InferenceServer.WhenReady(app).ContinueWith(ready =>
            {
                if (ready.Result) Console.WriteLine($"{path}: serving on {addresses} (Ctrl+C to stop)");
            }, TaskScheduler.Default);
            app.WaitForShutdown();
            InferenceServer.ThrowIfLoadFailed(app);
            return 0;
        });
        return command;
    }

    private static string[] Split(string list) => list.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
