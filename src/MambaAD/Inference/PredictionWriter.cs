using System.Globalization;
using System.Text;
using MambaAD.Imaging;
using MambaAD.IO;

namespace MambaAD.Inference;

/// <summary>
/// Writes predictions for image files into a folder: <c>scores.csv</c> (<c>path,score,is_anomalous</c>),
/// <c>overlays/&lt;stem&gt;.png</c>, <c>masks/&lt;stem&gt;.png</c> when a pixel threshold is known, and optionally
/// <c>maps/&lt;stem&gt;.npy</c> (float32, model size). Every file is written atomically.
/// </summary>
internal static class PredictionWriter
{
    public static IReadOnlyList<Prediction> Write(Predictor predictor, IReadOnlyList<string> files, string outDir, bool saveMaps = false,
        int batch = 8, Action<string, Prediction>? onEach = null, CancellationToken cancellationToken = default)
    {
        var stems = ImageFiles.UniqueStems(files);
        double? pixel = predictor.PixelThreshold;
        var csv = new StringBuilder("path,score,is_anomalous\n");
        var all = new List<Prediction>();
        for (int start = 0; start < files.Count && !cancellationToken.IsCancellationRequested; start += Math.Max(1, batch))
        {
            var chunk = Enumerable.Range(start, Math.Min(Math.Max(1, batch), files.Count - start)).ToList();
            var images = chunk.Select(i => ImageDecoder.DecodeRgb(files[i])).ToList();
            var predictions = predictor.Predict(images);
            for (int k = 0; k < chunk.Count; k++)
            {
                int i = chunk[k];
                var pr = predictions[k];
                csv.Append(Quote(files[i])).Append(',').Append(pr.Score.ToString("G9", CultureInfo.InvariantCulture)).Append(',')
                   .Append(pr.IsAnomalous is { } a ? (a ? "true" : "false") : "").Append('\n');
                AtomicFile.WriteAllBytes(Path.Combine(outDir, "overlays", stems[i] + ".png"),
                    HeatmapOverlay.OverlayPng(images[k], pr.Map, pr.MapSize, 0, HeatmapOverlay.ColourTop(pr.Map, pixel)));
                if (pixel is { } t)
                    AtomicFile.WriteAllBytes(Path.Combine(outDir, "masks", stems[i] + ".png"), HeatmapOverlay.MaskPng(pr.Map, pr.MapSize, t, pr.Width, pr.Height));
                if (saveMaps)
                    NpyArray.FromFloats(pr.Map, pr.MapSize, pr.MapSize).Write(Path.Combine(outDir, "maps", stems[i] + ".npy"));
                all.Add(pr);
                onEach?.Invoke(files[i], pr);
            }
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, "scores.csv"), csv.ToString());
        return all;
    }

    private static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
