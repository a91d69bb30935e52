using System.Text.Json;
using MambaAD.Checkpoints;
using MambaAD.Demo;
using MambaAD.Encoders;
using MambaAD.Model;
using MambaAD.Tests.CommandLine;
using MambaAD.Training;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// The trainer's promises, in process: a diverged run saves nothing and does not invent a checkpoint; --skip-bad
/// leaves unreadable training images out (and without it the error names the file and the option); a resumed run
/// keeps its plan and a finished one does not train on; an unreadable last/ falls back to the save before it; a
/// folder that is not a run is not trained into.
/// </summary>
[Collection("Torch")]
public sealed class TrainingPromiseTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("mambaad-promises").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private string Data(string name = "data") => SyntheticDataset.Generate(Path.Combine(_root, name),
        new SyntheticDatasetOptions(Seed: 3, ImageSize: 64, TrainPerClass: 8, TestGoodPerClass: 1, TestDefectPerType: 1, Classes: ["carpet", "washer"])).Root;

    private static TrainRequest Request(string data, string outDir, TrainingOptions? options = null, bool skipBad = false) => new(data, outDir,
        new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] }, "embedded",
        options ?? new TrainingOptions { Iterations = 8, BatchSize = 4, TestEvery = 0, Threads = 2, Workers = 2 }, new MambaAD.Data.DatasetOptions(SkipBad: skipBad));

    private sealed class Steps(CancellationTokenSource? cancel = null, long stopAfter = long.MaxValue) : IProgress<TrainingProgress>
    {
        public readonly List<long> Iterations = [];
        public readonly List<string> Warnings = [];
        public readonly List<string> Messages = [];

        public void Report(TrainingProgress p)
        {
            if (p.Phase == TrainingPhase.Warning) Warnings.Add(p.Message!);
            else if (p.Message is { } m) Messages.Add(m);
            if (p.Phase != TrainingPhase.Train || p.StepLoss is null) return;
            Iterations.Add(p.Iteration);
            if (p.Iteration >= stopAfter) cancel?.Cancel();
        }
    }

    [Fact]
    public void A_diverged_run_saves_nothing_and_names_no_checkpoint_that_does_not_exist()
    {
        var run = Path.Combine(_root, "diverged");
        var e = Assert.Throws<MambaADException>(() => Trainer.Train(Request(Data(), run, new TrainingOptions { Iterations = 8, BatchSize = 4, TestEvery = 0, LearningRate = 1e6, Threads = 2, Workers = 2 })));
        Assert.Matches("^the (loss|weights) became (NaN|-?∞|Infinity|-Infinity|non-finite)", e.Message);
        Assert.Contains("No checkpoint had been saved yet", e.Message);
        Assert.DoesNotContain("iteration 0", e.Message);
        Assert.Equal(nameof(TrainingOptions.LearningRate), e.Setting);
        Assert.False(Directory.Exists(Path.Combine(run, "last")));
        Assert.False(Directory.Exists(Path.Combine(run, "best")));
    }

    [Fact]
    public void Skip_bad_leaves_unreadable_training_images_out_and_without_it_the_error_names_file_and_option()
    {
        var data = Data();
        var zero = Path.Combine(data, "carpet", "train", "good", "900.png");
        var corrupt = Path.Combine(data, "washer", "train", "good", "901.png");
        File.WriteAllBytes(zero, []);
        File.WriteAllBytes(corrupt, File.ReadAllBytes(Path.Combine(data, "washer", "train", "good", "000.png"))[..200]);

        var (code, _, err) = CliRunner.Run("train", "--data", data, "--out", Path.Combine(_root, "strict"), "--image-size", "64", "--depths", "2,2,2,2",
            "--batch", "4", "--iterations", "8", "--test-every", "0", "--threads", "2", "--progress", "quiet");
        Assert.Equal(2, code);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches($"^error: ({Regex(zero)}|{Regex(corrupt)}): .*; add --skip-bad to leave such files out", line);

        var steps = new Steps();
        // 18 images, 4 batches of 4 per epoch (drop_last): over 3 epochs each file is met (the seed fixes the order).
        var result = Trainer.Train(Request(data, Path.Combine(_root, "skipping"),
            new TrainingOptions { Iterations = 12, BatchSize = 4, TestEvery = 0, Threads = 2, Workers = 2 }, skipBad: true), steps);
        Assert.True(result.Completed);
        Assert.Equal(12, steps.Iterations.Count);
        Assert.Contains(result.Warnings!, w => w.StartsWith(zero + ": the image file is empty"));
        Assert.Contains(result.Warnings!, w => w.StartsWith(corrupt + ":"));
        Assert.Equal(result.Warnings!.Count, result.Warnings!.Distinct().Count()); // each file once, not once per epoch
        Assert.Equal(result.Warnings, steps.Warnings);
        Assert.True(TrainingRunFixture.State(result.RunDir).SkipBad);
    }

    private static string Regex(string s) => System.Text.RegularExpressions.Regex.Escape(s);

    [Fact]
    public void A_resumed_run_keeps_its_plan_and_a_finished_one_does_not_train_on()
    {
        var data = Data();
        // A time budget so short that the plan shrinks to the probe's iterations (3 of the 500 planned): the run ends there.
        var budget = Path.Combine(_root, "budget");
        var steps = new Steps();
        var done = Trainer.Train(Request(data, budget, new TrainingOptions { Iterations = 500, TimeLimit = TimeSpan.FromMilliseconds(1), BatchSize = 4, TestEvery = 0, Threads = 2, Workers = 2 }), steps);
        Assert.True(done.Completed);
        var state = TrainingRunFixture.State(budget);
        Assert.True(state.IsFinished);
        Assert.Equal(steps.Iterations.Count, state.TotalIterations);
        Assert.True(state.TrainingSeconds > 0);
        var again = new Steps();
        var resumed = Trainer.Resume(budget, again);
        Assert.True(resumed.Completed);
        Assert.Empty(again.Iterations);                                   // before: a fresh budget and 22 more iterations
        Assert.Contains(again.Messages, m => m.Contains("is finished"));
        Assert.Equal(state.Iteration, TrainingRunFixture.State(budget).Iteration);

        // The plan and decay point stored in model.json are the ones a resumed run follows (here: shortened by hand).
        var run = Path.Combine(_root, "plan");
        using var cts = new CancellationTokenSource();
        Trainer.Train(Request(data, run, new TrainingOptions { Iterations = 12, BatchSize = 4, TestEvery = 0, Threads = 2, Workers = 2 }), new Steps(cts, 2), cts.Token);
        var infoPath = Path.Combine(run, "last", Checkpoint.InfoFile);
        var info = CheckpointInfo.FromJson(File.ReadAllText(infoPath), infoPath);
        Assert.Equal(2, info.Training!.Iteration);
        Assert.Equal(12, info.Training.TotalIterations);
        Assert.Equal(10, info.Training.DecayIteration); // round(0.8 × 12)
        File.WriteAllText(infoPath, (info with { Training = info.Training with { TotalIterations = 4, DecayIteration = 3 } }).ToJson());
        var rest = new Steps();
        Assert.True(Trainer.Resume(run, rest).Completed);
        Assert.Equal([3L, 4L], rest.Iterations);
        var train = File.ReadAllLines(Path.Combine(run, RunFolder.MetricsFile)).Select(l => JsonDocument.Parse(l).RootElement)
            .Single(e => e.GetProperty("event").GetString() == "train");
        Assert.Equal(0.005 * 0.1, train.GetProperty("lr").GetDouble(), 12); // iteration 4 is after the stored decay point
    }

    [Fact]
    public void An_unreadable_last_falls_back_to_the_save_before_it()
    {
        var data = Data();
        var run = Path.Combine(_root, "fallback");
        var options = new TrainingOptions { Iterations = 8, BatchSize = 4, TestEvery = 1, Threads = 2, Workers = 2 };
        using (var cts = new CancellationTokenSource())
            Trainer.Train(Request(data, run, options), new Steps(cts, 5), cts.Token); // saves at 4, then 5 on the interrupt
        var previous = Path.Combine(run, "last.previous");
        Assert.Equal(4, CheckpointInfo.FromJson(File.ReadAllText(Path.Combine(previous, Checkpoint.InfoFile)), "x").Training!.Iteration);
        File.WriteAllBytes(Path.Combine(run, "last", "optimizer.bin"), [1, 2, 3]); // damaged

        var steps = new Steps();
        var result = Trainer.Resume(run, steps);
        Assert.True(result.Completed);
        var warning = Assert.Single(steps.Warnings);
        Assert.Contains("optimizer.bin is damaged or incomplete", warning);
        Assert.Contains("resuming from the save before it (iteration 4)", warning);
        Assert.Equal([5L, 6, 7, 8], steps.Iterations);
        Assert.True(Directory.Exists(Path.Combine(run, "last.unreadable")));

        // Both unreadable: one line that says what to do.
        File.WriteAllText(Path.Combine(run, "last", Checkpoint.InfoFile), "{");
        File.WriteAllText(Path.Combine(run, "last.previous", Checkpoint.InfoFile), "{");
        var e = Assert.Throws<MambaADException>(() => Trainer.Resume(run));
        Assert.Contains("cannot be resumed", e.Message);
        Assert.Contains("start a new run", e.Message);
    }

    [Fact]
    public void A_folder_that_is_not_a_run_is_not_trained_into()
    {
        var data = Data();
        var own = Path.Combine(_root, "my-files");
        Directory.CreateDirectory(own);
        File.WriteAllText(Path.Combine(own, "thesis.tex"), "precious");
        var (code, _, err) = CliRunner.Run("train", "--data", data, "--out", own, "--image-size", "64", "--depths", "2,2,2,2", "--progress", "quiet");
        Assert.Equal(2, code);
        Assert.Equal($"error: --out: {own} is not empty and not a run folder (it holds thesis.tex): choose an empty or new folder for the run, or continue a run with --resume", err.Trim());
        Assert.Equal(["thesis.tex"], Directory.GetFileSystemEntries(own).Select(Path.GetFileName));

        var file = Path.Combine(_root, "a-file");
        File.WriteAllText(file, "x");
        (code, _, err) = CliRunner.Run("train", "--data", data, "--out", file, "--image-size", "64", "--depths", "2,2,2,2", "--progress", "quiet");
        Assert.Equal(2, code);
        Assert.Equal($"error: --out: {file} is a file: give a folder to write into", err.Trim());
    }
}
