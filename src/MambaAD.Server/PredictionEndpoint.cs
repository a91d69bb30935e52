using System.Text.Json;
using System.Text.Json.Serialization;
using MambaAD.Imaging;
using MambaAD.Inference;
using Microsoft.AspNetCore.Http;

namespace MambaAD.Server;

/// <summary>
/// One prediction request, under one deadline (<see cref="ServerOptions.RequestTimeout"/> from its headers) through its
/// stages: admitted (else 503), its body received holding no slot (under Kestrel's minimum upload rate), a slot waited
/// for, images decoded, the forward (which checks the deadline between sub-batches and frees the model when it passes),
/// the answer encoded with the slot released, then written with its length. Whatever stage the deadline falls in, the
/// answer is a 504 JSON naming it — never a 200 with an empty or partial body.
/// </summary>
internal sealed class PredictionEndpoint(ServedModel model, AdmissionGate gate, ServerOptions o, ServerMetrics metrics, MemoryTrimmer trimmer, ServerHooks? hooks)
{
    /// <summary>One answer of /predict; <see cref="Name"/> (a multipart file name, echoed) and <see cref="Heatmap"/> (a base64 PNG) are omitted when null.</summary>
    internal sealed record PredictionAnswer(
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name,
        double Score, double? Threshold, bool? IsAnomalous, int Width, int Height,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Heatmap);

    /// <summary>Answers <c>POST /predict</c> (<paramref name="batch"/> false: one image) or <c>POST /predict/batch</c>.</summary>
    public async Task HandleAsync(HttpContext ctx, bool batch)
    {
        bool heatmap = HeatmapRequested(ctx.Request);
        if (batch && !(ctx.Request.ContentType ?? "").StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            throw new RequestRejected(StatusCodes.Status415UnsupportedMediaType, "/predict/batch takes multipart/form-data with one file part per image");
        if (model.Predictor is not { } predictor)
        {
            ctx.Response.Headers.RetryAfter = "5";
            throw new RequestRejected(StatusCodes.Status503ServiceUnavailable, $"the model is not ready ({Describe(model.Status)}); retry later");
        }
        using var ticket = gate.TryAdmit();
        if (ticket is null)
        {
            ctx.Response.Headers.RetryAfter = "1";
            throw new RequestRejected(StatusCodes.Status503ServiceUnavailable, $"server busy: {gate.Slots} requests in progress and {gate.QueueLimit} admitted beside them; retry later");
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        deadline.CancelAfter(o.Timeout);
        var ct = deadline.Token;
        var stage = Stage.Upload;
        try
        {
            var encoded = await ImageRequestReader.ReadAsync(ctx.Request, o, batch ? o.MaxBatchImages : 1, ct);

            await Enter(stage = Stage.Queue, ct);
            await ticket.WaitForSlotAsync(ct);

            await Enter(stage = Stage.Decode, ct);
            var images = new List<RgbImage>(encoded.Count);
            foreach (var e in encoded)
            {
                ct.ThrowIfCancellationRequested();
                try { images.Add(ImageDecoder.DecodeRgb(e.Bytes, e.Name)); }
                finally { trimmer.CollectIfDue(); } // a bomb allocates its whole image before it fails
            }

            await Enter(stage = Stage.Forward, ct);
            int scored = 0;
            var predictions = predictor.Predict(images, ct, new Progress(done =>
            {
                metrics.ForwardImages(done - scored);
                scored = done;
                hooks?.Entering?.Invoke(Stage.Forward, ct).GetAwaiter().GetResult();
            }));

            byte[] json = Answer(predictor, encoded, images, predictions, heatmap, batch, ct);
            ticket.ReleaseSlot();

            await Enter(stage = Stage.Response, ct);
            ct.ThrowIfCancellationRequested();
            ctx.Response.StatusCode = StatusCodes.Status200OK;
            ctx.Response.ContentType = "application/json; charset=utf-8";
            ctx.Response.ContentLength = json.Length;
            await ctx.Response.Body.WriteAsync(json, ct);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ctx.RequestAborted.IsCancellationRequested && !ctx.Response.HasStarted)
        {
            metrics.Timeout(stage);
            throw new RequestRejected(StatusCodes.Status504GatewayTimeout,
                $"request took longer than {o.Timeout.TotalSeconds:0.###} s ({Describe(stage)}); retry later, send fewer or smaller images, or start the server with a longer --timeout");
        }
        finally
        {
            trimmer.Served();
        }
    }

    private Task Enter(Stage stage, CancellationToken ct) => hooks?.Entering?.Invoke(stage, ct) ?? Task.CompletedTask;

    /// <summary>The answer's JSON bytes: scores with the threshold in force, heat maps when asked (the deadline checked per image).</summary>
    private byte[] Answer(Predictor predictor, IReadOnlyList<ImageRequestReader.EncodedImage> encoded, List<RgbImage> images,
        IReadOnlyList<Prediction> predictions, bool heatmap, bool batch, CancellationToken ct)
    {
        double? threshold = o.ImageThreshold ?? predictor.Threshold;
        double? pixel = predictor.PixelThreshold;
        var answers = new List<PredictionAnswer>(predictions.Count);
        for (int i = 0; i < predictions.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var p = predictions[i];
            string? png = heatmap
                ? Convert.ToBase64String(HeatmapOverlay.OverlayPng(images[i], p.Map, p.MapSize, 0, HeatmapOverlay.ColourTop(p.Map, pixel)))
                : null;
            answers.Add(new PredictionAnswer(encoded.Count > 1 || encoded[i].Name != "body" ? encoded[i].Name : null,
                p.Score, threshold, threshold is { } t ? p.Score > t : null, p.Width, p.Height, png));
        }
        return batch
            ? JsonSerializer.SerializeToUtf8Bytes(new { results = answers }, InferenceServer.Json)
            : JsonSerializer.SerializeToUtf8Bytes(answers[0], InferenceServer.Json);
    }

    private static string Describe(Stage stage) => stage switch
    {
        Stage.Upload => "timed out while receiving the request body",
        Stage.Queue => "timed out while waiting for a free inference slot",
        Stage.Decode => "timed out while decoding the images",
        Stage.Forward => "timed out in the forward pass",
        _ => "timed out before the answer could be written",
    };

    private static string Describe(ModelStatus status) => status switch
    {
        ModelStatus.Loading => "loading",
        ModelStatus.WarmingUp => "warming up",
        ModelStatus.Draining => "the server is stopping",
        _ => "it failed to load",
    };

    private static bool HeatmapRequested(HttpRequest request)
    {
        var v = request.Query["heatmap"].ToString();
        return v.Length == 0 ? false
            : bool.TryParse(v, out var b) ? b
            : v == "1" ? true : v == "0" ? false
            : throw new RequestRejected(StatusCodes.Status400BadRequest, $"heatmap='{ImageRequestReader.Clip(v)}': use heatmap=true or heatmap=false");
    }

    /// <summary>Reports synchronously on the forward's thread (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class Progress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
