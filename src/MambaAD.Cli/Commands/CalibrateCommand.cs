using System.CommandLine;
using MambaAD.Checkpoints;
using MambaAD.Data;
using MambaAD.Inference;

namespace MambaAD.Cli.Commands;

/// <summary><c>mambaad calibrate</c>: choose image and pixel thresholds and store them in the checkpoint's model.json.</summary>
internal static class CalibrateCommand
{
    public static Command Create()
    {
        var ckpt = new CheckpointOptions();
        var data = new DataOptions("Dataset root whose images calibrate the thresholds", required: true);
        var split = new Option<string>("--split") { Description = "test: F1-max when it has anomalous images; train: its normal images only (quantile)", DefaultValueFactory = _ => "test" };
        var quantile = new Option<double>("--normal-quantile") { Description = "With normal images only: the score quantile used as threshold (0.99 flags about 1 % of normal images)", DefaultValueFactory = _ => Calibration.NormalQuantile };
        var command = new Command("calibrate", "Choose the image and pixel thresholds that predict uses, and store them in model.json beside model.pth.")
        { split, quantile };
        data.AddTo(command);
        ckpt.AddTo(command);
        command.SetAction((parse, ct) =>
        {
            var (path, official, device) = ckpt.Read(parse);
            using var predictor = Predictor.Load(path, official, device);
            var ds = data.Open(parse);
            var samples = parse.GetValue(split) switch
            {
                "test" => ds.Test,
                "train" => ds.Train,
                var s => throw new MambaADException($"--split {s}: use test or train"),
            };
            TestReport report;
            try
            {
                report = ModelTesting.Run(predictor, samples, new TestOptions(SkipBad: parse.GetValue(data.SkipBad), GalleryPerClass: 0), cancellationToken: ct);
            }
            catch (Exception) when (ct.IsCancellationRequested) { throw new OperationCanceledException(ct); }
            ct.ThrowIfCancellationRequested(); // thresholds from part of the images are not stored
            foreach (var w in ds.Warnings.Concat(report.Warnings)) Console.Error.WriteLine($"warning: {w}");
            var thresholds = Calibration.Choose(report, parse.GetValue(quantile));
            Store(Path.GetDirectoryName(predictor.ModelPath)!, thresholds);
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Writes <paramref name="thresholds"/> into the model.json of <paramref name="checkpointDir"/> and says so.</summary>
    internal static void Store(string checkpointDir, Thresholds thresholds)
    {
        var infoPath = Checkpoint.SetThresholds(checkpointDir, thresholds);
        Console.WriteLine($"thresholds: image {thresholds.Image:G6}, pixel {(thresholds.Pixel is { } p ? p.ToString("G6") : "–")} ({thresholds.Method}) → {infoPath}");
    }
}
