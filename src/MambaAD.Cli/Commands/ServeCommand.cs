using System.CommandLine;
using MambaAD.Inference;
using MambaAD.Server;
using Microsoft.Extensions.Hosting;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad serve</c>: the HTTP inference server over one loaded checkpoint (see <see cref="InferenceServer"/>).</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var urls = new Option<string>("--urls") { Description = "Listening addresses, ';'-separated (loopback by default; port 0 picks a free one)", DefaultValueFactory = _ => ServerOptions.DefaultUrl };
        var threshold = new Option<double?>("--threshold") { Description = "Image threshold for is_anomalous instead of the checkpoint's" };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "Largest request body", DefaultValueFactory = _ => new ServerOptions().MaxRequestBytes };
        var maxSide = new Option<int>("--max-image-side") { Description = "Largest image width or height", DefaultValueFactory = _ => new ServerOptions().MaxImageSide };
        var concurrency = new Option<int>("--concurrency") { Description = "Prediction requests processed at once", DefaultValueFactory = _ => new ServerOptions().MaxConcurrentRequests };
        var queue = new Option<int>("--queue") { Description = "Prediction requests waiting beyond that (then 503)", DefaultValueFactory = _ => new ServerOptions().QueueLimit };
        var timeout = new Option<double>("--timeout") { Description = "Seconds a prediction request may take, queueing included (then 504)", DefaultValueFactory = _ => 30 };
        var command = new Command("serve", "HTTP inference server: POST /predict, POST /predict/batch, GET /health, GET /model.")
        { urls, threshold, maxBytes, maxSide, concurrency, queue, timeout };
        ckpt.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (path, official, device) = ckpt.Read(parse);
            using var predictor = Predictor.Load(path, official, device);
            if (parse.GetValue(threshold) is { } t) predictor.ImageThreshold = t;
            var options = new ServerOptions(
                Urls: parse.GetValue(urls)!.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                MaxRequestBytes: parse.GetValue(maxBytes), MaxImageSide: parse.GetValue(maxSide),
                MaxConcurrentRequests: parse.GetValue(concurrency), QueueLimit: parse.GetValue(queue),
                RequestTimeout: TimeSpan.FromSeconds(parse.GetValue(timeout)));
            await using var app = InferenceServer.Build(predictor, options);
            await app.StartAsync(ct);
            Console.WriteLine($"{predictor.ModelPath}: serving on {string.Join(", ", InferenceServer.Addresses(app))} (Ctrl+C to stop)");
            // Until SIGINT/SIGTERM (the host's console lifetime) or System.CommandLine's cancellation; then drain and stop.
            await app.WaitForShutdownAsync(ct);
            return 0;
        });
        return command;
    }
}
