using System.Diagnostics;
using MambaAD.Encoders;
using MambaAD.Checkpoints;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Training;

namespace MambaAD.Demo;

/// <summary>Options of the demo: where it writes, how long it trains, and the (small, fast) model it trains.</summary>
/// <param name="OutDir">Everything goes under it: data/, run/, predictions/.</param>
/// <param name="Minutes">Training time budget (generation, testing and prediction come on top).</param>
/// <param name="Seed">Seed of the dataset and of training.</param>
/// <param name="ImageSize">Model input size. 64 rather than the official 256, so that a few CPU minutes train many iterations (measured: 64² separates the demo classes clearly in 3 minutes; 128² gets 4× fewer iterations).</param>
/// <param name="Depths">Decoder depths; the paper's [3,4,6,3] by default.</param>
public sealed record DemoOptions(string OutDir = "mambaad-demo", double Minutes = 5, int Seed = 42, int ImageSize = 64,
    IReadOnlyList<int>? Depths = null);

/// <summary>What the demo produced.</summary>
public sealed record DemoResult(SyntheticDatasetInfo Data, TrainResult Training, TestReport Test, Thresholds Thresholds,
    string PredictionsDir, IReadOnlyList<(string File, Prediction Prediction)> Predictions, string ReportPath, TimeSpan Elapsed);

/// <summary>
/// <c>mambaad demo</c>: generate a procedural multi-class defect dataset, train one model on all its classes with the
/// embedded ImageNet ResNet18, test it with the seven metrics, calibrate thresholds, and predict a few test images.
/// </summary>
public static class DemoRun
{
    public static DemoResult Run(DemoOptions options, IProgress<TrainingProgress>? progress = null, Action<string>? log = null,
        CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var dataDir = Path.Combine(options.OutDir, "data");
        var runDir = Path.Combine(options.OutDir, "run");
        log?.Invoke($"generating the demo dataset in {dataDir} …");
        var data = SyntheticDataset.Generate(dataDir, new SyntheticDatasetOptions(Seed: options.Seed));
        cancellationToken.ThrowIfCancellationRequested();
        log?.Invoke($"{data.ClassNames.Count} classes ({string.Join(", ", data.ClassNames)}): {data.TrainCount} normal training images, " +
                    $"{data.TestCount} test images ({data.TestDefectCount} with defects){(data.Reused ? " (reused)" : "")}");
        if (Directory.Exists(runDir))
        {
            log?.Invoke($"replacing the previous demo run in {runDir}");
            Directory.Delete(runDir, recursive: true);
        }
        var config = new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = options.ImageSize, Depths = options.Depths ?? [3, 4, 6, 3] };
        var training = new TrainingOptions
        {
            Epochs = 1000, TimeLimit = TimeSpan.FromMinutes(options.Minutes), TestEvery = 0, Seed = options.Seed,
        };
        log?.Invoke($"training MambaAD ({config}) for about {options.Minutes:0.#} min on the normal images of all classes …");
        var result = Trainer.Train(new TrainRequest(dataDir, runDir, config, "embedded", training), progress, cancellationToken);
        if (!result.Completed) throw new OperationCanceledException(cancellationToken); // run/ holds the position; a new demo starts over
        var test = result.LastTest ?? throw new InvalidOperationException("the demo dataset has test images: a final test must have run");
        var thresholds = Calibration.Choose(test);
        Checkpoint.SetThresholds(result.LastCheckpoint, thresholds);

        var predictionsDir = Path.Combine(options.OutDir, "predictions");
        var picks = test.Images.GroupBy(r => r.Sample.ClassName)
            .SelectMany(g => g.Where(r => !r.Sample.IsFolderAnomalous).Take(1).Concat(g.Where(r => r.Sample.IsFolderAnomalous).Take(1)))
            .Select(r => r.Sample.ImagePath).ToList();
        using var predictor = Predictor.Load(result.LastCheckpoint);
        var predictions = new List<(string, Prediction)>();
        // All or nothing: an interrupted demo leaves no partial predictions/ (the folder is the demo's own).
        IO.AtomicFolder.Replace(predictionsDir, stage =>
        {
            PredictionWriter.Write(predictor, picks, stage, onEach: (f, p) => predictions.Add((f, p)), cancellationToken: cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
        }, "scores.csv", keepPrevious: false);
        var reportPath = Path.Combine(options.OutDir, "report.html");
        Reporting.HtmlReport.Write(reportPath, test, new Reporting.ReportOptions("MambaAD demo", thresholds,
            [new("checkpoint", result.LastCheckpoint), new("model", config.ToString()), new("dataset", $"{data.Root} (generated, seed {options.Seed})"),
             new("training", $"{options.Minutes:0.#} min budget on {Environment.ProcessorCount} CPUs")]));
        return new DemoResult(data, result, test, thresholds, predictionsDir, predictions, reportPath, clock.Elapsed);
    }
}
