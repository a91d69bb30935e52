using System.CommandLine;
using MambaAD.Inference;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad predict</c>: scores, heat-map overlays and masks for images (a thin layer over <see cref="PredictionWriter"/>).</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var inputs = new Argument<string[]>("IMAGE_OR_FOLDER") { Description = "Images (PNG, JPEG, BMP; grey, RGB, RGBA; any size) or folders of them", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "Output folder: scores.csv, overlays/, masks/ (with a pixel threshold), maps/ (with --save-maps)", DefaultValueFactory = _ => "predictions" };
        var threshold = new Option<double?>("--threshold") { Description = "Image threshold for is_anomalous (default: the checkpoint's, from calibrate)" };
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
            var dir = parse.GetValue(outDir)!;
            PredictionWriter.Write(predictor, files, dir, parse.GetValue(saveMaps), parse.GetValue(batch),
                (file, pr) => Console.WriteLine($"{pr.Score,10:F5}  {(pr.IsAnomalous is { } a ? (a ? "ANOMALOUS" : "normal   ") : "")}  {file}"), ct);
            Console.WriteLine($"wrote scores.csv, overlays/{(predictor.Info.Thresholds?.Pixel is null ? "" : ", masks/")}{(parse.GetValue(saveMaps) ? ", maps/" : "")} under {dir}");
            if (predictor.Info.Thresholds is null && parse.GetValue(threshold) is null)
                Console.WriteLine("no threshold known: run mambaad calibrate (or pass --threshold) to get is_anomalous and masks");
            return Task.FromResult(0);
        });
        return command;
    }
}
