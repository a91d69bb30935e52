using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.RateLimiting;
using MambaAD.Imaging;
using MambaAD.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MambaAD.Server;

/// <summary>
/// The HTTP inference server behind <c>mambaad serve</c>: ASP.NET Core minimal API on Kestrel over one shared
/// <see cref="Predictor"/> (loaded once; its forward passes are serialised, decoding and encoding run in parallel).
/// <list type="bullet">
/// <item><c>POST /predict</c>: one image (raw body or a multipart file part) →
/// <c>{score, threshold, is_anomalous, width, height}</c>; <c>?heatmap=true</c> adds <c>heatmap</c>, a base64 PNG of
/// the anomaly map over the image (blue at 0, red at twice the pixel threshold).</item>
/// <item><c>POST /predict/batch</c>: several multipart file parts → <c>{results: [{name, …}]}</c>, one forward pass.</item>
/// <item><c>GET /health</c>, <c>GET /model</c> (configuration, classes, thresholds, version, limits).</item>
/// </list>
/// Every refusal is a 4xx/5xx with <c>{"error": "…"}</c>: 400 empty/non-image/truncated, 413 too large, 415 wrong
/// content type, 422 too many pixels, 503 queue full, 504 timeout.
/// </summary>
public static class InferenceServer
{
    private const string PredictPolicy = "predict";

    private static readonly Dictionary<string, string> Endpoints = new(StringComparer.OrdinalIgnoreCase)
    {
        ["/predict"] = "POST", ["/predict/batch"] = "POST", ["/health"] = "GET", ["/model"] = "GET",
    };

    // Relaxed escaping: answers are application/json, never embedded in HTML, so quotes in messages stay readable.
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The library version reported by <c>/model</c>.</summary>
    public static string Version { get; } =
        typeof(Predictor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";

    /// <summary>Builds (does not start) the app. The caller keeps ownership of <paramref name="predictor"/> and disposes it after the app stops.</summary>
    public static WebApplication Build(Predictor predictor, ServerOptions? options = null)
    {
        var o = options ?? new ServerOptions();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls([.. o.Urls ?? [ServerOptions.DefaultUrl]]);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = o.MaxRequestBytes;
            k.Limits.MaxConcurrentConnections = 1024;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
        });
        builder.Services.AddRequestTimeouts(t => t.DefaultPolicy = new RequestTimeoutPolicy
        {
            Timeout = o.Timeout,
            TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
            WriteTimeoutResponse = ctx => WriteError(ctx, StatusCodes.Status504GatewayTimeout, $"request took longer than {o.Timeout.TotalSeconds:0.#} s"),
        });
        builder.Services.AddRateLimiter(r =>
        {
            // One shared limiter for both predict endpoints: at most N in progress, a bounded FIFO queue, then 503.
            r.AddConcurrencyLimiter(PredictPolicy, c =>
            {
                c.PermitLimit = Math.Max(1, o.MaxConcurrentRequests);
                c.QueueLimit = Math.Max(0, o.QueueLimit);
                c.QueueProcessingOrder = QueueProcessingOrder.OldestFirst;
            });
            r.RejectionStatusCode = StatusCodes.Status503ServiceUnavailable;
            r.OnRejected = async (ctx, _) =>
            {
                ctx.HttpContext.Response.Headers.RetryAfter = "1";
                await WriteError(ctx.HttpContext, StatusCodes.Status503ServiceUnavailable, $"server busy: {o.MaxConcurrentRequests} requests in progress and {o.QueueLimit} queued; retry later");
            };
        });

        var app = builder.Build();
        app.Use(Errors);
        app.UseRouting();
        app.UseRequestTimeouts();
        app.UseRateLimiter();

        app.MapGet("/health", () => Results.Json(new { status = "ok" }, Json));
        app.MapGet("/model", () => Results.Json(ModelDescription(predictor, o), Json));
        app.MapPost("/predict", async (HttpContext ctx) =>
        {
            bool heatmap = HeatmapRequested(ctx.Request);
            var images = await ImageRequestReader.ReadAsync(ctx.Request, o, 1, ctx.RequestAborted);
            return Results.Json(Predict(predictor, images, heatmap, ctx.RequestAborted)[0], Json);
        }).RequireRateLimiting(PredictPolicy);
        app.MapPost("/predict/batch", async (HttpContext ctx) =>
        {
            bool heatmap = HeatmapRequested(ctx.Request);
            if (!(ctx.Request.ContentType ?? "").StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
                throw new RequestRejected(StatusCodes.Status415UnsupportedMediaType, "/predict/batch takes multipart/form-data with one file part per image");
            var images = await ImageRequestReader.ReadAsync(ctx.Request, o, o.MaxBatchImages, ctx.RequestAborted);
            return Results.Json(new { results = Predict(predictor, images, heatmap, ctx.RequestAborted) }, Json);
        }).RequireRateLimiting(PredictPolicy);
        app.MapFallback((HttpContext ctx) =>
        {
            var path = ctx.Request.Path.Value ?? "";
            if (Endpoints.TryGetValue(path.TrimEnd('/'), out var method))
            {
                ctx.Response.Headers.Allow = method;
                return Results.Json(new { error = $"{path} takes {method}" }, Json, statusCode: StatusCodes.Status405MethodNotAllowed);
            }
            return Results.Json(new { error = $"no endpoint {ctx.Request.Method} {ImageRequestReader.Clip(path)}; the endpoints are POST /predict, POST /predict/batch, GET /health, GET /model" }, Json, statusCode: StatusCodes.Status404NotFound);
        });
        return app;
    }

    /// <summary>The addresses the started app listens on (with the real port when port 0 was asked for).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];

    /// <summary>One answer of /predict; <see cref="Name"/> (a multipart file name, echoed) and <see cref="Heatmap"/> (a base64 PNG) are omitted when null.</summary>
    internal sealed record PredictionAnswer(
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Name,
        double Score, double? Threshold, bool? IsAnomalous, int Width, int Height,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Heatmap);

    private static List<PredictionAnswer> Predict(Predictor predictor, IReadOnlyList<ImageRequestReader.EncodedImage> encoded, bool heatmap, CancellationToken ct)
    {
        var images = encoded.Select(e => ImageDecoder.DecodeRgb(e.Bytes, e.Name)).ToList();
        ct.ThrowIfCancellationRequested();
        var predictions = predictor.Predict(images);
        double? threshold = predictor.Threshold;
        double? pixel = predictor.PixelThreshold;
        return predictions.Select((p, i) =>
        {
            string? png = heatmap
                ? Convert.ToBase64String(HeatmapOverlay.OverlayPng(images[i], p.Map, p.MapSize, 0, HeatmapOverlay.ColourTop(p.Map, pixel)))
                : null;
            return new PredictionAnswer(encoded.Count > 1 || encoded[i].Name != "body" ? encoded[i].Name : null,
                p.Score, threshold, p.IsAnomalous, p.Width, p.Height, png);
        }).ToList();
    }

    private static bool HeatmapRequested(HttpRequest request)
    {
        var v = request.Query["heatmap"].ToString();
        return v.Length == 0 ? false
            : bool.TryParse(v, out var b) ? b
            : v == "1" ? true : v == "0" ? false
            : throw new RequestRejected(StatusCodes.Status400BadRequest, $"heatmap='{ImageRequestReader.Clip(v)}': use heatmap=true or heatmap=false");
    }

    private static JsonObject ModelDescription(Predictor predictor, ServerOptions o)
    {
        // From model.json, leaving out the training state (it holds the server's file paths).
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
            ["image_threshold"] = predictor.ImageThreshold ?? predictor.Info.Thresholds?.Image,
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
            },
        };
        return model;
    }

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
                BadHttpRequestException b => (b.StatusCode, b.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request body too large" : $"bad request ({b.Message})"),
                _ => (StatusCodes.Status500InternalServerError, "internal error"),
            };
            if (status == StatusCodes.Status500InternalServerError)
                ctx.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("MambaAD.Server").LogError(e, "unhandled error in {Path}", ctx.Request.Path);
            await WriteError(ctx, status, message);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away (a timeout is answered with 504 by the timeout middleware before it gets here).
        }
    }

    private static Task WriteError(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new { error = message }, Json);
    }
}
