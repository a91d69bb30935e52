using MambaAD.Checkpoints;

using MambaAD.Data;
using MambaAD.Demo;
using MambaAD.Encoders;
using MambaAD.IO;
using MambaAD.Inference;
using MambaAD.Model;
using MambaAD.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Training;

/// <summary>
/// Trains a tiny model on generated data (embedded ResNet18, 64², a few iterations), then saves, reloads, tests,
/// calibrates and predicts; and checks that a run interrupted mid-epoch and resumed reproduces the uninterrupted run.
/// </summary>
[Collection("Torch")]
public sealed class EndToEndTests : IDisposable
{
    private readonly string _root = DiskTemp.Create("mambaad-e2e-");   // a disk: one run keeps its features in a file

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private string Data(string name = "data") => SyntheticDataset.Generate(Path.Combine(_root, name),
        new SyntheticDatasetOptions(Seed: 3, ImageSize: 64, TrainPerClass: 8, TestGoodPerClass: 2, TestDefectPerType: 1, Classes: ["carpet", "washer"])).Root;

    private static TrainRequest Request(string data, string outDir) => new(data, outDir,
        new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] }, "embedded",
        new TrainingOptions { Iterations = 8, BatchSize = 4, TestEvery = 0, Threads = 2, Workers = 2 });

    /// <summary>
    /// Collects each step's loss and every message; cancels after <paramref name="stopAfter"/> steps when given; calls
    /// <paramref name="afterStep"/> with each step's iteration, on the training thread.
    /// </summary>
    private sealed class Recorder(CancellationTokenSource? cancel = null, long stopAfter = long.MaxValue, Action<long>? afterStep = null,
        Action<string>? onMessage = null) : IProgress<TrainingProgress>
    {
        public readonly List<(long Iteration, double Loss)> Steps = [];
        public readonly List<string> Messages = [];

        public void Report(TrainingProgress p)
        {
            if (p.Message is { } m)
            {
                Messages.Add(m);
                onMessage?.Invoke(m);
            }
            if (p.Phase != TrainingPhase.Train || p.StepLoss is not { } loss) return;
            Steps.Add((p.Iteration, loss));
            afterStep?.Invoke(p.Iteration);
            if (p.Iteration >= stopAfter) cancel?.Cancel();
        }
    }

    [Fact]
    public void TrainSaveReloadTestCalibratePredict()
    {
        var data = Data();
        var run = Path.Combine(_root, "run");
        var rec = new Recorder();
        var result = Trainer.Train(Request(data, run), rec);
        Assert.True(result.Completed);
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), rec.Steps.Select(s => s.Iteration));
        Assert.All(rec.Steps, s => Assert.True(double.IsFinite(s.Loss) && s.Loss > 0));
        foreach (var f in new[] { "last/model.pth", "last/model.json", "last/optimizer.bin", "best/model.pth", "metrics.jsonl" })
            Assert.True(File.Exists(Path.Combine(run, f)), $"{f} missing");
        var log = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
        Assert.Contains(log, l => l.Contains("\"event\":\"test\""));
        if (OperatingSystem.IsLinux())   // each epoch's line says the process's memory, now and at its peak
            Assert.All(log.Where(l => l.Contains("\"event\":\"train\"")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement), e =>
                Assert.InRange(e.GetProperty("rss_mb").GetInt64(), 50, e.GetProperty("peak_rss_mb").GetInt64()));

        // Reload and test: the checkpoint reproduces the final test of the run.
        using var loaded = Checkpoint.Load(run);
        Assert.EndsWith(Path.Combine("best", "model.pth"), loaded.ModelPath);
        Assert.Equal(["carpet", "washer"], loaded.Info.Classes);
        var ds = Dataset.Open(data);
        var report = ModelTesting.Run(loaded.Model, loaded.Info.Normalization, ds.Test); // the trainer's test batch (16)
        Assert.Equal(result.LastTest!.Result.Mean.MAD!.Value, report.Result.Mean.MAD!.Value, 6);
        // Even 8 steps separate the generated defects (measured: I-AUROC 100 and P-AUROC 95–99 per class); a broken
        // map, score or training step would not.
        foreach (var (cls, m) in report.Result.Classes)
        {
            Assert.True(m.IAuroc >= 0.9, $"{cls}: I-AUROC {m.IAuroc} — normal and anomalous images are not separated");
            Assert.True(m.PAuroc >= 0.9, $"{cls}: P-AUROC {m.PAuroc} — the maps do not localise the defects");
        }
        Assert.Equal(ds.Test.Count, report.Images.Count);

        // Calibrate, store, predict.
        var thresholds = Calibration.Choose(report);
        Checkpoint.SetThresholds(result.LastCheckpoint, thresholds);
        using var predictor = Predictor.Load(result.LastCheckpoint);
        Assert.Equal(thresholds, predictor.Info.Thresholds);
        var files = ds.Test.Take(3).Select(s => s.ImagePath).ToList();
        var outDir = Path.Combine(_root, "pred");
        var predictions = new Dictionary<string, Prediction>();
        PredictionWriter.Write(predictor, files, outDir, onEach: (f, p) => predictions.Add(f, p));
        Assert.All(predictions.Values, p => Assert.NotNull(p.IsAnomalous));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(outDir, "scores.csv")).Length);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(outDir, "overlays"), "*.png", SearchOption.AllDirectories).Length);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(outDir, "masks"), "*.png", SearchOption.AllDirectories).Length);
        // The same image scores the same through the predictor as through the test.
        var first = report.Images.Single(r => r.Sample.ImagePath == files[0]);
        Assert.Equal(first.Score, predictions[files[0]].Score, 5);
    }

    [Fact]
    public void AResumedRunReproducesTheUninterruptedOne()
    {
        var data = Data();
        var full = new Recorder();
        var a = Trainer.Train(Request(data, Path.Combine(_root, "a")), full);
        Assert.True(a.Completed);

        using var cts = new CancellationTokenSource();
        var first = new Recorder(cts, stopAfter: 6); // mid-epoch: 4 iterations per epoch
        var b = Trainer.Train(Request(data, Path.Combine(_root, "b")), first, cts.Token);
        Assert.False(b.Completed);
        var second = new Recorder();
        var resumed = Trainer.Resume(Path.Combine(_root, "b"), second);
        Assert.True(resumed.Completed);

        var trajectory = first.Steps.Concat(second.Steps).ToList();
        Assert.Equal(full.Steps.Select(s => s.Iteration), trajectory.Select(s => s.Iteration));
        for (int i = 0; i < trajectory.Count; i++)
            Assert.True(Math.Abs(full.Steps[i].Loss - trajectory[i].Loss) <= 1e-6 * Math.Abs(full.Steps[i].Loss),
                $"iteration {i + 1}: resumed loss {trajectory[i].Loss} ≠ uninterrupted {full.Steps[i].Loss}");

        using var ma = Checkpoint.Load(a.LastCheckpoint);
        using var mb = Checkpoint.Load(resumed.LastCheckpoint);
        var wb = StateDict.Ordered(mb.Model).ToDictionary(e => e.Name, e => e.Tensor);
        foreach (var (name, t) in StateDict.Ordered(ma.Model))
            Assert.True(t.allclose(wb[name], 0, 0), $"{name} differs after resume");
    }

    /// <param name="memoryGb">The cache's memory budget: the default holds these features, a tiny one sends them to a file.</param>
    [Theory]
    [InlineData(null, "encoder features kept in memory")]
    [InlineData(1e-9, "encoder features kept in a temporary file")]
    public void A_run_that_keeps_the_encoder_features_trains_the_same_weights_without_reading_the_images_again(double? memoryGb, string decision)
    {
        var off = Request(Data("a"), Path.Combine(_root, "plain"));
        var plain = Trainer.Train(off with { Options = off.Options with { FeatureCacheGb = 0 } });
        Assert.True(plain.Completed);

        // With the cache (on by default), the training images are deleted once the first epoch (4 iterations of 4
        // images) has seen them all.
        var data = Data("b");
        var train = Dataset.Open(data).Train.Select(s => s.ImagePath).ToList();
        string runDir = Path.Combine(_root, "kept");
        var leftInRunFolder = new List<string>();
        var rec = new Recorder(afterStep: iteration =>
        {
            if (iteration == 4) train.ForEach(File.Delete);
            leftInRunFolder.AddRange(Directory.GetFiles(runDir, ".encoder-features*"));
        });
        var request = Request(data, runDir);
        var kept = Trainer.Train(request with { Options = request.Options with { FeatureCacheGb = memoryGb } }, rec);
        Assert.True(kept.Completed);
        Assert.Contains(rec.Messages, m => m.Contains(decision));
        Assert.All(train, f => Assert.False(File.Exists(f)));
        if (!OperatingSystem.IsWindows()) Assert.Empty(leftInRunFolder);   // the file has no name while it is used

        using var a = Checkpoint.Load(plain.LastCheckpoint);
        using var b = Checkpoint.Load(kept.LastCheckpoint);
        var wb = StateDict.Ordered(b.Model).ToDictionary(e => e.Name, e => e.Tensor);
        foreach (var (name, t) in StateDict.Ordered(a.Model))
            Assert.True(t.allclose(wb[name], 0, 0), $"{name} differs between the runs with and without the cache");
    }

    [Fact]
    public void Tests_after_the_first_score_the_kept_features_of_the_test_images_as_the_images_themselves()
    {
        var off = Request(Data("a"), Path.Combine(_root, "plain"));
        off = off with { Options = off.Options with { TestEvery = 1, FeatureCacheGb = 0 } };   // two epochs, two tests
        var plain = Trainer.Train(off);
        Assert.True(plain.Completed);

        // With the caches (on by default), the test images (not their masks) are deleted once the first test has read them.
        var data = Data("b");
        var test = Dataset.Open(data).Test.ToList();
        Assert.Contains(test, s => s.MaskPath is not null);
        var rec = new Recorder(onMessage: m =>
        {
            if (m.StartsWith("epoch 1: ", StringComparison.Ordinal)) test.ForEach(s => File.Delete(s.ImagePath));
        });
        var request = Request(data, Path.Combine(_root, "kept"));
        var kept = Trainer.Train(request with { Options = request.Options with { TestEvery = 1 } }, rec);
        Assert.True(kept.Completed, string.Join(" | ", rec.Messages));
        Assert.Contains(rec.Messages, m => m.Contains("the test images' encoder features kept in memory too"));
        Assert.Contains(rec.Messages, m => m.StartsWith("epoch 2: ", StringComparison.Ordinal));
        Assert.All(test, s => Assert.False(File.Exists(s.ImagePath)));

        // The same scores bit for bit (the last test: from kept features against from the images), so the same metrics.
        var (a, b) = (plain.LastTest!, kept.LastTest!);
        Assert.Equal(a.Images.Select(r => (r.Sample.ImagePath[^20..], r.Score, r.IsAnomalous, r.HasMask)),
            b.Images.Select(r => (r.Sample.ImagePath[^20..], r.Score, r.IsAnomalous, r.HasMask)));
        Assert.Equal(a.Result.Mean.Values, b.Result.Mean.Values);
        Assert.Equal(TestEvents(plain.RunDir), TestEvents(kept.RunDir));
    }

    private static string[] TestEvents(string runDir) =>
        File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl")).Where(l => l.Contains("\"event\":\"test\"")).ToArray();

    [Fact]
    public void ATimeBudgetShortensThePlanAndStillTests()
    {
        var data = Data();
        var request = Request(data, Path.Combine(_root, "budget"));
        request = request with { Options = request.Options with { Iterations = 500, TimeLimit = TimeSpan.FromSeconds(3) } };
        var rec = new Recorder();
        var result = Trainer.Train(request, rec);
        Assert.True(result.Completed);
        Assert.InRange(rec.Steps.Count, 3, 499);                 // at least the probe, far fewer than planned
        Assert.NotNull(result.LastTest);
        var info = CheckpointInfo.FromJson(File.ReadAllText(Path.Combine(result.LastCheckpoint, "model.json")), "model.json");
        Assert.Equal(rec.Steps.Count, info.Training!.TotalIterations);
    }

    [Fact]
    public void AnExistingRunIsNotOverwritten()
    {
        var data = Data();
        var run = Path.Combine(_root, "run");
        Directory.CreateDirectory(Path.Combine(run, "last"));
        File.WriteAllText(Path.Combine(run, "last", "model.json"), "{}");
        var ex = Assert.Throws<MambaADException>(() => Trainer.Train(Request(data, run)));
        Assert.Contains("already holds a run: resume it", ex.Message);
        Assert.Equal(nameof(TrainRequest.OutDir), ex.Setting);
    }
}
