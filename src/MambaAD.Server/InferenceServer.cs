using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using MambaAD.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using MinDataRate = Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MambaAD.Server;

/// <summary>
/// The HTTP inference server behind <c>mambaad serve</c>: ASP.NET Core minimal API on Kestrel over one shared
/// <see cref="Predictor"/> (its forward passes are serialised; decoding and encoding run in parallel).
/// <list type="bullet">
/// <item><c>POST /predict</c>: one image (raw body or a multipart file part) →
/// <c>{score, threshold, is_anomalous, width, height}</c>; <c>?heatmap=true</c> adds <c>heatmap</c>, a base64 PNG of
/// the anomaly map over the image (blue at 0, red at twice the pixel threshold).</item>
/// <item><c>POST /predict/batch</c>: several multipart file parts → <c>{results: [{name, …}]}</c>.</item>
/// <item><c>GET /health</c>: readiness, 200 <c>{"status":"ready"}</c> once the model is loaded and warmed up, else 503
/// with the status (loading, warming up, draining, failed); <c>GET /health/live</c>: liveness, 200 while the process
/// serves HTTP; <c>GET /metrics</c>: Prometheus text format (<see cref="ServerMetrics"/>); <c>GET /model</c>:
/// configuration, classes, thresholds, version and limits, without file system paths.</item>
/// </list>
/// Every refusal is a 4xx/5xx with <c>{"error": "…"}</c>: 400 empty/non-image/truncated, 403 foreign browser origin,
/// 408 too slow an upload, 413 too large, 415 wrong content type, 421 host not allowed, 422 too many pixels, 503 busy or
/// not ready, 504 timeout (<see cref="PredictionEndpoint"/>).
/// </summary>
public static partial class InferenceServer
{
    private static readonly Dictionary<string, string> Endpoints = new(StringComparer.OrdinalIgnoreCase)
    {
        ["/predict"] = "POST", ["/predict/batch"] = "POST", ["/health"] = "GET", ["/health/live"] = "GET", ["/metrics"] = "GET", ["/model"] = "GET",
    };

    /// <summary>Paths of the probes, for manifests and tests: readiness and liveness.</summary>
    public const string ReadinessPath = "/health", LivenessPath = "/health/live";

    // Relaxed escaping: answers are application/json, never embedded in HTML, so quotes in messages stay readable.
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The library version reported by <c>/model</c>.</summary>
    public static string Version { get; } =
        typeof(Predictor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";

    /// <summary>
    /// Builds (does not start) the app over a loaded predictor; it is warmed up once the app starts, and
    /// <c>/health</c> says ready after that. The caller keeps ownership of <paramref name="predictor"/> and disposes it
    /// after disposing the app (which waits for admitted requests to finish).
    /// </summary>
    /// <exception cref="MambaADException">When an option is out of range (<see cref="ServerOptions.Validate"/>).</exception>
    public static WebApplication Build(Predictor predictor, ServerOptions? options = null) =>
        Build(_ => predictor, ownsPredictor: false, options, hooks: null);

    /// <summary>
    /// Builds (does not start) the app; once it listens, <paramref name="load"/> runs in the background (its token is
    /// cancelled if the app stops first), then a warm-up forward, then <c>/health</c> says ready. The app owns the
    /// predictor and frees it when disposed, after admitted requests have finished. A failed load stops the app;
    /// <see cref="ThrowIfLoadFailed"/> then rethrows the error.
    /// </summary>
    /// <exception cref="MambaADException">When an option is out of range (<see cref="ServerOptions.Validate"/>).</exception>
    public static WebApplication Build(Func<CancellationToken, Predictor> load, ServerOptions? options = null) =>
        Build(load, ownsPredictor: true, options, hooks: null);

    internal static WebApplication Build(Func<CancellationToken, Predictor> load, bool ownsPredictor, ServerOptions? options, ServerHooks? hooks)
    {
        var o = (options ?? new ServerOptions()).Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls([.. o.Urls ?? [ServerOptions.DefaultUrl]]);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = o.MaxRequestBytes;
            k.Limits.MaxConcurrentConnections = 1024;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            k.Limits.MinRequestBodyDataRate = o.MinUploadBytesPerSecond > 0 ? new MinDataRate(o.MinUploadBytesPerSecond, TimeSpan.FromSeconds(5)) : null;
        });
        // On SIGTERM, Kestrel stops accepting and lets admitted requests finish: each ends within its deadline.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = o.Timeout + TimeSpan.FromSeconds(5));

        var gate = new AdmissionGate(o.MaxConcurrentRequests, o.QueueLimit);
        var model = new ServedModel(load, ownsPredictor, gate, drainLimit: o.Timeout + TimeSpan.FromSeconds(10));
        var metrics = new ServerMetrics(gate, () => model.Status);
        var trimmer = new MemoryTrimmer(gate);
        // Factory registrations, resolved below, so that disposing the app disposes them: the model after draining.
        builder.Services.AddSingleton(_ => model);
        builder.Services.AddSingleton(_ => trimmer);
        var endpoint = new PredictionEndpoint(model, gate, o, metrics, trimmer, hooks);

        var app = builder.Build();
        app.Services.GetRequiredService<ServedModel>();
        app.Services.GetRequiredService<MemoryTrimmer>();
        app.Lifetime.ApplicationStarted.Register(() => model.StartLoading(app.Lifetime.StopApplication));
        app.Lifetime.ApplicationStopping.Register(model.BeginDrain);
        app.Use(Measured(metrics));
        app.Use(Errors);
        app.Use(HostFilter.Create(o));
        app.UseRouting();

        app.MapGet(ReadinessPath, () => model.Status switch
        {
            ModelStatus.Ready => Results.Json(new { status = "ready", load_seconds = Math.Round(model.LoadSeconds, 3), warm_up_seconds = Math.Round(model.WarmUpSeconds, 3) }, Json),
            var status => Results.Json(new
            {
                status = status switch { ModelStatus.Loading => "loading", ModelStatus.WarmingUp => "warming up", ModelStatus.Draining => "draining", _ => "failed" },
            }, Json, statusCode: StatusCodes.Status503ServiceUnavailable),
        });
        app.MapGet(LivenessPath, () => Results.Json(new { status = "alive" }, Json));
        app.MapGet("/metrics", (HttpContext ctx) => metrics.WriteAsync(ctx.Response, ctx.RequestAborted));
        app.MapGet("/model", (HttpContext ctx) => model.Predictor is { } p
            ? Results.Json(ModelDescription(p, o), Json)
            : Results.Json(new { error = "the model is not loaded yet; retry later" }, Json, statusCode: StatusCodes.Status503ServiceUnavailable));
        app.MapPost("/predict", (HttpContext ctx) => endpoint.HandleAsync(ctx, batch: false));
        app.MapPost("/predict/batch", (HttpContext ctx) => endpoint.HandleAsync(ctx, batch: true));
        app.MapFallback((HttpContext ctx) =>
        {
            var path = ctx.Request.Path.Value ?? "";
            if (Endpoints.TryGetValue(path.TrimEnd('/'), out var method))
            {
                ctx.Response.Headers.Allow = method;
                return Results.Json(new { error = $"{path} takes {method}" }, Json, statusCode: StatusCodes.Status405MethodNotAllowed);
            }
            return Results.Json(new { error = $"no endpoint {ctx.Request.Method} {ImageRequestReader.Clip(path)}; the endpoints are {string.Join(", ", Endpoints.Select(e => $"{e.Value} {e.Key}"))}" },
                Json, statusCode: StatusCodes.Status404NotFound);
        });
        return app;
    }

    /// <summary>Starts the app; an address that cannot be bound (in use, not this machine's) is a one-line <see cref="MambaADException"/>.</summary>
    public static async Task StartAsync(WebApplication app, CancellationToken ct = default)
    {
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException e)
        {
            throw new MambaADException($"--urls: cannot listen ({e.Message.Split('\n')[0]}); choose another port or address", e);
        }
    }

    /// <summary>The addresses the started app listens on (with the real port when port 0 was asked for).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];

    /// <summary>Completes with true once the model is loaded and warmed up; false when loading failed or the app stopped first.</summary>
    public static Task<bool> WhenReady(WebApplication app) => app.Services.GetRequiredService<ServedModel>().WhenReady;

    /// <summary>Rethrows the error that stopped a background load (a <see cref="MambaADException"/> for a bad checkpoint), if any.</summary>
    public static void ThrowIfLoadFailed(WebApplication app) => app.Services.GetRequiredService<ServedModel>().LoadError?.Throw();

    private static JsonObject ModelDescription(Predictor predictor, ServerOptions o)
    {
        // From model.json, leaving out the training state (it holds the server's file paths), with no path in any value.
        var info = JsonNode.Parse(predictor.Info.ToJson())!.AsObject();
        var model = new JsonObject
        {
            ["version"] = Version,
            ["format"] = info["format"]?.DeepClone(),
            ["config"] = info["config"]?.DeepClone(),
            ["encoder_weights"] = info["encoder_weights"]?.DeepClone(),
            ["normalization"] = info["normalization"]?.DeepClone(),
            ["classes"] = info["classes"]?.DeepClone(),
            ["thresholds"] = info["thresholds"]?.DeepClone(),
            ["image_threshold"] = o.ImageThreshold ?? predictor.Threshold,
            ["image_size"] = predictor.ImageSize,
            ["created_utc"] = info["created_utc"]?.DeepClone(),
            ["limits"] = new JsonObject
            {
                ["max_request_bytes"] = o.MaxRequestBytes,
                ["max_image_side"] = o.MaxImageSide,
                ["max_image_pixels"] = o.MaxImagePixels,
                ["max_batch_images"] = o.MaxBatchImages,
                ["max_concurrent_requests"] = o.MaxConcurrentRequests,
                ["queue_limit"] = o.QueueLimit,
                ["request_timeout_seconds"] = o.Timeout.TotalSeconds,
                ["min_upload_bytes_per_second"] = o.MinUploadBytesPerSecond,
            },
        };
        WithoutPaths(model);
        return model;
    }

    /// <summary>
    /// Replaces every absolute file system path in the strings of <paramref name="node"/> by its file name: the
    /// encoder weights are recorded as <c>file /abs/dir/resnet34.pth (…)</c>, and a client has no business knowing the
    /// server's folders.
    /// </summary>
    internal static void WithoutPaths(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj.ToList())
                    if (value is JsonValue v && v.TryGetValue(out string? s)) obj[key] = HidePaths(s);
                    else WithoutPaths(value);
                break;
            case JsonArray array:
                for (int i = 0; i < array.Count; i++)
                    if (array[i] is JsonValue v && v.TryGetValue(out string? s)) array[i] = HidePaths(s);
                    else WithoutPaths(array[i]);
                break;
        }
    }

    // "file /a/b c/w.pth (ignored fc.*)" → "file w.pth (ignored fc.*)": a path runs from a leading / (or X:\ or ~/) to
    // the end or to " (", so names with spaces are covered whole.
    internal static string HidePaths(string s) =>
        AbsolutePath().Replace(s, m => Path.GetFileName(m.Value.TrimEnd('/', '\\').Replace('\\', '/')));

    [GeneratedRegex(@"(?<![\w.~])(?:/|[A-Za-z]:[\\/]|~/)(?:(?! \().)*", RegexOptions.None)]
    private static partial Regex AbsolutePath();

    /// <summary>Counts every answer by endpoint and status code, with its duration.</summary>
    private static Func<HttpContext, RequestDelegate, Task> Measured(ServerMetrics metrics) => async (ctx, next) =>
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            await next(ctx);
        }
        finally
        {
            var path = ctx.Request.Path.Value ?? "";
            var endpoint = Endpoints.ContainsKey(path) ? path.ToLowerInvariant() : "other";
            metrics.Request(endpoint, ctx.RequestAborted.IsCancellationRequested && !ctx.Response.HasStarted ? 499 : ctx.Response.StatusCode,
                Stopwatch.GetElapsedTime(start));
        }
    };

    /// <summary>Turns refusals into JSON errors; a bug becomes a 500 without details (logged).</summary>
    private static async Task Errors(HttpContext ctx, RequestDelegate next)
    {
        try
        {
            await next(ctx);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is not OperationCanceledException)
        {
            var (status, message) = e switch
            {
                RequestRejected r => (r.Status, r.Message),
                MambaADException m => (StatusCodes.Status400BadRequest, m.Message),
                BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (StatusCodes.Status413PayloadTooLarge, "request body too large"),
                BadHttpRequestException { StatusCode: StatusCodes.Status408RequestTimeout } =>
                    (StatusCodes.Status408RequestTimeout, "the request body arrived too slowly (below --min-upload-rate); send it faster or in one piece"),
                BadHttpRequestException b => (b.StatusCode, $"bad request ({b.Message})"),
                _ => (StatusCodes.Status500InternalServerError, "internal error"),
            };
            if (status == StatusCodes.Status500InternalServerError)
                ctx.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("MambaAD.Server").LogError(e, "unhandled error in {Path}", ctx.Request.Path);
            await WriteError(ctx, status, message);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is no one to answer.
        }
    }

    /// <summary>Writes <c>{"error": message}</c> with its length (so that a client can tell a complete answer).</summary>
    internal static Task WriteError(HttpContext ctx, int status, string message)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new { error = message }, Json);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        ctx.Response.ContentLength = body.Length;
        return ctx.Response.Body.WriteAsync(body).AsTask();
    }
}
