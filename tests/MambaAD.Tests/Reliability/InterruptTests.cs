using MambaAD.Checkpoints;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Model;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// Ctrl-C and SIGTERM to a real <c>mambaad</c> process: training saves its exact position and exits 130/143, a second
/// signal ends it at once (even in the middle of a save) without breaking the run, and the run resumed after all that
/// ends with the weights of the uninterrupted run; <c>test</c> and <c>calibrate</c> stop without writing anything.
/// </summary>
[Collection("Reliability")]
public sealed class InterruptTests(TrainingRunFixture run)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    /// <summary>Starts a training process, waits until it trains (its first progress output), signals it after a delay.</summary>
    private static (int Code, CliProcess Process) SignalDuringTraining(string[] args, int signal, int delayMs, IReadOnlyDictionary<string, string>? env = null)
    {
        var p = CliProcess.Start(args, env);
        Assert.True(p.WaitForLine(l => l.StartsWith("training MambaAD") || l.StartsWith("resuming "), Limit), p.Transcript());
        if (signal == CliProcess.SIGINT && p.IgnoresSigint())
            throw new InvalidOperationException("the test process ignores SIGINT (started in the background by a shell?), so its children do too: run the tests in the foreground");
        Thread.Sleep(delayMs);
        p.Signal(signal);
        return (p.WaitForExit(Limit), p);
    }

    [Fact]
    public void Signals_during_training_save_the_position_and_the_resumed_run_equals_the_uninterrupted_one()
    {
        var dir = run.NewRunDir("signals");

        // 1. Ctrl-C while training: exit 130, the exact position saved.
        var (code, p) = SignalDuringTraining(run.TrainArgs(dir), CliProcess.SIGINT, 1500);
        using (p)
        {
            Assert.True(code == 130, $"exit {code}; {p.Transcript()}");
            Assert.Contains(p.Stdout, l => l.StartsWith("interrupted: the exact position is saved in"));
            Assert.Contains(p.Stderr, l => l.Contains("SIGINT: stopping at the next safe point"));
            Assert.DoesNotContain(p.Stderr, l => l.TrimStart().StartsWith("at "));
        }
        TrainingRunFixture.AssertConsistent(dir);
        long first = TrainingRunFixture.State(dir).Iteration;

        // 2. SIGTERM in the resumed run: exit 143, saved further on (or at the same place when it came before a step).
        (code, p) = SignalDuringTraining(TrainingRunFixture.ResumeArgs(dir), CliProcess.SIGTERM, 2500);
        using (p) Assert.True(code == 143, $"exit {code}; {p.Transcript()}");
        TrainingRunFixture.AssertConsistent(dir);
        Assert.True(TrainingRunFixture.State(dir).Iteration >= first);

        // 3. A second Ctrl-C in the middle of the save that the first one started: the process ends at once, unsaved.
        var before = File.ReadAllBytes(Path.Combine(dir, "last", Checkpoint.InfoFile));
        p = CliProcess.Start(TrainingRunFixture.ResumeArgs(dir), new Dictionary<string, string> { ["MAMBAAD_TEST_PAUSE_AT"] = "last:written" });
        using (p)
        {
            Assert.True(p.WaitForLine(l => l.StartsWith("resuming "), Limit), p.Transcript());
            p.Signal(CliProcess.SIGINT);
            Assert.True(p.WaitForLine(l => l == "paused at last:written", Limit), p.Transcript());
            p.Signal(CliProcess.SIGINT);
            code = p.WaitForExit(TimeSpan.FromMinutes(1));
            Assert.True(code == 130, $"exit {code}; {p.Transcript()}"); // killed by SIGINT: 128 + 2
            Assert.DoesNotContain(p.Stdout, l => l.StartsWith("interrupted: the exact position is saved"));
        }
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "last", Checkpoint.InfoFile))); // the old set, whole

        // 4. Resume to the end: the weights are the uninterrupted run's.
        var (end, last) = CliProcess.Run(TrainingRunFixture.ResumeArgs(dir));
        using (last) Assert.True(end == 0, $"exit {end}; {last.Transcript()}");
        TrainingRunFixture.AssertSameWeights(run.Reference, dir);
        TrainingRunFixture.AssertConsistent(dir);
        Assert.False(Directory.Exists(Path.Combine(dir, ".last.new")));
    }

    [Fact]
    public void Test_and_calibrate_interrupted_write_nothing()
    {
        var dir = Directory.CreateTempSubdirectory("mambaad-interrupt").FullName;
        try
        {
            // Enough test images (64) that the signal lands while they are scored.
            var data = MambaAD.Demo.SyntheticDataset.Generate(Path.Combine(dir, "data"), new MambaAD.Demo.SyntheticDatasetOptions(Seed: 4, ImageSize: 64,
                TrainPerClass: 2, TestGoodPerClass: 61, TestDefectPerType: 1, Classes: ["carpet"])).Root;
            var ckpt = Path.Combine(dir, "ckpt");
            TorchSharp.torch.manual_seed(1);
            using (var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, ImageSize = 64, Depths = [2, 2, 2, 2] }))
                Checkpoint.Save(ckpt, model, new CheckpointInfo(CheckpointInfo.CurrentFormat, model.Config, "test", InputNormalization.ImageNet,
                    ["carpet"], null, null, "now"));
            var json = Path.Combine(dir, "metrics.json");
            var info = File.ReadAllBytes(Path.Combine(ckpt, Checkpoint.InfoFile));

            // test: the signal after it says what it tests, i.e. while it scores the images.
            using (var p = CliProcess.Start(["test", "--checkpoint", ckpt, "--data", data, "--json", json, "--batch", "4"]))
            {
                Assert.True(p.WaitForLine(l => l.EndsWith(" test images"), Limit), p.Transcript());
                p.Signal(CliProcess.SIGTERM);
                int code = p.WaitForExit(Limit);
                Assert.True(code == 143, $"test: exit {code}; {p.Transcript()}");
                Assert.Equal("interrupted (SIGTERM)", p.Stderr.Last());
                Assert.DoesNotContain(p.Stdout, l => l.Contains("I-AUROC"));
                Assert.False(File.Exists(json), "an interrupted test wrote its metrics");
            }

            // calibrate: the signal during its start or its scoring; the thresholds are not stored.
            using (var p = CliProcess.Start(["calibrate", "--checkpoint", ckpt, "--data", data]))
            {
                Thread.Sleep(1000);
                p.Signal(CliProcess.SIGINT);
                int code = p.WaitForExit(Limit);
                Assert.True(code == 130, $"calibrate: exit {code}; {p.Transcript()}");
                Assert.Equal("interrupted (SIGINT)", p.Stderr.Last());
                Assert.Equal(info, File.ReadAllBytes(Path.Combine(ckpt, Checkpoint.InfoFile)));
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
