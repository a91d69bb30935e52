using System.CommandLine;
using System.Globalization;
using System.Text;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.IO;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad predict</c>: scores, heat-map overlays and masks for images (a thin layer over <see cref="Predictor"/>).</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var inputs = new Argument<string[]>("IMAGE_OR_FOLDER") { Description = "Images (PNG, JPEG, BMP; grey, RGB, RGBA; any size) or folders of them", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "Output folder: scores.csv, overlays/, masks/, maps/", DefaultValueFactory = _ => "predictions" };
        var threshold = new Option<double?>("--threshold") { Description = "Image threshold (default: the checkpoint's, from calibrate)" };
        var saveMaps = new Option<bool>("--save-maps") { Description = "Also write each smoothed map (float32, model size) as maps/<stem>.npy" };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass", DefaultValueFactory = _ => 8 };
        var command = new Command("predict", "Score images: scores.csv (path,score,is_anomalous), heat-map overlays, and binary masks when a pixel threshold is known.")
        { inputs, outDir, threshold, saveMaps, batch };
        ckpt.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var (path, official, device) = ckpt.Read(parse);
            using var predictor = Predictor.Load(path, official, device);
            predictor.ImageThreshold = parse.GetValue(threshold);
            var files = ImageFiles.Expand(parse.GetValue(inputs)!);
            var stems = ImageFiles.UniqueStems(files);
            var dir = parse.GetValue(outDir)!;
            double? pixel = predictor.Info.Thresholds?.Pixel;
            var csv = new StringBuilder("path,score,is_anomalous\n");
            int n = Math.Max(1, parse.GetValue(batch));
            double scale = pixel is { } p ? 2 * p : double.NaN;
            for (int start = 0; start < files.Count && !ct.IsCancellationRequested; start += n)
            {
                var chunk = Enumerable.Range(start, Math.Min(n, files.Count - start)).ToList();
                var images = chunk.Select(i => ImageDecoder.DecodeRgb(files[i])).ToList();
                var predictions = predictor.Predict(images);
                for (int k = 0; k < chunk.Count; k++)
                {
                    int i = chunk[k];
                    var pr = predictions[k];
                    csv.Append(Quote(files[i])).Append(',').Append(pr.Score.ToString("G9", CultureInfo.InvariantCulture)).Append(',')
                       .Append(pr.IsAnomalous is { } a ? (a ? "true" : "false") : "").Append('\n');
                    // Colours: 0 → blue; twice the pixel threshold → red, so the threshold sits in the middle. Without one, per image.
                    double high = double.IsNaN(scale) ? pr.Map.Max() : scale;
                    AtomicFile.WriteAllBytes(Path.Combine(dir, "overlays", stems[i] + ".png"), HeatmapOverlay.OverlayPng(images[k], pr.Map, pr.MapSize, 0, high));
                    if (pixel is { } t)
                        AtomicFile.WriteAllBytes(Path.Combine(dir, "masks", stems[i] + ".png"), HeatmapOverlay.MaskPng(pr.Map, pr.MapSize, t, pr.Width, pr.Height));
                    if (parse.GetValue(saveMaps))
                        NpyArray.FromFloats(pr.Map, pr.MapSize, pr.MapSize).Write(Path.Combine(dir, "maps", stems[i] + ".npy"));
                    Console.WriteLine($"{pr.Score,10:F5}  {(pr.IsAnomalous is { } an ? (an ? "ANOMALOUS" : "normal   ") : "")}  {files[i]}");
                }
            }
            AtomicFile.WriteAllText(Path.Combine(dir, "scores.csv"), csv.ToString());
            Console.WriteLine($"wrote {Path.Combine(dir, "scores.csv")}, overlays/{(pixel is null ? "" : ", masks/")}{(parse.GetValue(saveMaps) ? ", maps/" : "")} under {dir}");
            if (predictor.Info.Thresholds is null && parse.GetValue(threshold) is null)
                Console.WriteLine("no threshold known: run mambaad calibrate (or pass --threshold) to get is_anomalous and masks");
            return Task.FromResult(0);
        });
        return command;
    }

    private static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
