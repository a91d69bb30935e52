using System.CommandLine;
using MambaAD.Inference;
using MambaAD.IO;

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
        var saveMaps = new Option<bool>("--save-maps") { Description = "Also write each smoothed map (float32, model size) under maps/" };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass (the same in every shard and resumed run)", DefaultValueFactory = _ => 8 };
        var skipBad = new Option<bool>("--skip-bad") { Description = "Go on past unreadable images: each gets a row with an empty score and the reason in the error column" };
        var resume = new Option<bool>("--resume") { Description = "Keep the rows an interrupted run of the same inputs wrote to scores.csv and continue after them" };
        var shard = new Option<string?>("--shard") { Description = "I/N: score only part I (0-based) of N of the sorted inputs; the N scores.csv files concatenated in order are the single run's" };
        var command = new Command("predict", "Score images: scores.csv (path,score,is_anomalous,overlay,mask,map,error; one row per input, written as it goes), heat-map overlays, and binary masks when a pixel threshold is known.")
        { inputs, outDir, threshold, saveMaps, batch, skipBad, resume, shard };
        ckpt.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var dir = OutputPath.Folder(parse.GetValue(outDir)!, "OutDir"); // checked before the work
            var part = parse.GetValue(shard) is { } s ? Shard.Parse(s) : (Shard?)null;
            var files = ImageFiles.Expand(parse.GetValue(inputs)!);
            var (path, official, device) = ckpt.Read(parse);
            using var predictor = Predictor.Load(path, official, device);
            predictor.ImageThreshold = parse.GetValue(threshold);
            var options = new PredictOptions(parse.GetValue(saveMaps), parse.GetValue(batch), parse.GetValue(skipBad), parse.GetValue(resume), part);
            var summary = PredictionWriter.Write(predictor, files, dir, options,
                (file, pr) => Console.WriteLine($"{pr.Score,10:F5}  {(pr.IsAnomalous is { } a ? (a ? "ANOMALOUS" : "normal   ") : "")}  {file}"), ct);
            foreach (var w in summary.Skipped) Console.Error.WriteLine($"warning: skipped {w}");
            string of = part is { } p ? $" (shard {p} of {files.Files.Count} inputs)" : "";
            Console.WriteLine($"{summary.Scored} scored{(summary.Kept > 0 ? $", {summary.Kept} kept from the earlier run" : "")}" +
                $"{(summary.Skipped.Count > 0 ? $", {summary.Skipped.Count} unreadable (rows with an error)" : "")} of {summary.Inputs}{of}; " +
                $"wrote scores.csv, overlays/{(predictor.PixelThreshold is null ? "" : ", masks/")}{(parse.GetValue(saveMaps) ? ", maps/" : "")} under {dir}");
            if (summary.Interrupted)
            {
                Console.WriteLine($"interrupted: every row written is complete; continue with the same command and --resume");
                return Task.FromResult(130);
            }
            if (predictor.Threshold is null)
                Console.WriteLine("no threshold known: run mambaad calibrate (or pass --threshold) to get is_anomalous and masks");
            return Task.FromResult(0);
        });
        return command;
    }
}
