using System.Collections;
using MambaAD.Checkpoints;
using MambaAD.Demo;
using MambaAD.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// A tiny training run for the process tests: generated data (2 classes, 16 normal 64² images: 4 iterations per
/// epoch at batch 4), the embedded ResNet18, depths 2-2-2-2, 12 iterations with a test after every epoch, so that a
/// run saves last/ three times and best/ up to three times. The uninterrupted run (a real CLI process) is made once
/// and is the reference every interrupted-and-resumed run must equal, bit for bit.
/// </summary>
public sealed class TrainingRunFixture : IDisposable
{
    public string Root { get; } = DiskTemp.Create("mambaad-reliability");   // a disk: the crash chain keeps its features in a file
    public string Data { get; }
    private readonly Lazy<string> _reference;

    public TrainingRunFixture()
    {
        Data = SyntheticDataset.Generate(Path.Combine(Root, "data"),
            new SyntheticDatasetOptions(Seed: 3, ImageSize: 64, TrainPerClass: 8, TestGoodPerClass: 1, TestDefectPerType: 1, Classes: ["carpet", "washer"])).Root;
        _reference = new Lazy<string>(() =>
        {
            var run = Path.Combine(Root, "reference");
            var (code, p) = CliProcess.Run(TrainArgs(run));
            using (p) Assert.True(code == 0, $"the reference run failed ({code}): {p.Transcript()}");
            return run;
        });
    }

    /// <summary>The uninterrupted run's folder.</summary>
    public string Reference => _reference.Value;

    public string NewRunDir(string name) => Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);

    public string[] TrainArgs(string runDir) =>
        ["train", "--data", Data, "--out", runDir, "--image-size", "64", "--depths", "2,2,2,2", "--batch", "4", "--iterations", "12",
         "--test-every", "1", "--threads", "2", "--workers", "2", "--progress", "plain", "--seed", "5"];

    public static string[] ResumeArgs(string runDir) => ["train", "--resume", runDir, "--progress", "plain"];

    /// <summary>The training state saved in a run's last/.</summary>
    public static TrainingState State(string runDir)
    {
        var path = Path.Combine(runDir, "last", Checkpoint.InfoFile);
        return CheckpointInfo.FromJson(File.ReadAllText(path), path).Training!;
    }

    /// <summary>Asserts that two runs' last/ hold the same weights, bit for bit, and the same position.</summary>
    public static void AssertSameWeights(string expectedRun, string actualRun)
    {
        Assert.Equal(State(expectedRun).Iteration, State(actualRun).Iteration);
        var expected = PyTorchFile.Read(Path.Combine(expectedRun, "last", Checkpoint.ModelFile), "reference");
        var actual = PyTorchFile.Read(Path.Combine(actualRun, "last", Checkpoint.ModelFile), "resumed");
        try
        {
            Assert.Equal(expected.Count, actual.Count);
            foreach (DictionaryEntry e in expected)
            {
                var a = Assert.IsAssignableFrom<Tensor>(actual[e.Key]);
                var b = (Tensor)e.Value!;
                Assert.True(a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>(), $"{e.Key} differs from the uninterrupted run");
            }
        }
        finally
        {
            PyTorchFile.DisposeAll(expected);
            PyTorchFile.DisposeAll(actual);
        }
    }

    /// <summary>Asserts a run folder holds only complete checkpoints and no leftovers of a save (after a start has recovered it).</summary>
    public static void AssertConsistent(string runDir)
    {
        foreach (var kind in new[] { "last", "best", "last.previous" })
        {
            var dir = Path.Combine(runDir, kind);
            if (!Directory.Exists(dir)) continue;
            var info = Path.Combine(dir, Checkpoint.InfoFile);
            Assert.True(File.Exists(info), $"{dir} has no {Checkpoint.InfoFile}");
            using var loaded = Checkpoint.Load(dir);
            if (kind != "best")
                foreach (var f in new[] { "optimizer.bin", "rng.pth" })
                    Assert.True(File.Exists(Path.Combine(dir, f)), $"{dir} lacks {f}");
        }
        var temps = Directory.EnumerateFiles(runDir, "*.tmp", SearchOption.AllDirectories).ToList();
        Assert.True(temps.Count == 0, "temporary files left: " + string.Join(", ", temps));
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}

[CollectionDefinition("Reliability")]
public sealed class ReliabilityCollection : ICollectionFixture<TrainingRunFixture>;
