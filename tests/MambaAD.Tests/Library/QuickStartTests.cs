using MambaAD.Demo;

namespace MambaAD.Tests.Library;

/// <summary>The README's library example is this compiled code, and it runs: train, test, calibrate, predict.</summary>
[Collection("Torch")]
public sealed class QuickStartTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("mambaad-quickstart-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void The_readme_shows_the_example_verbatim()
    {
        var repo = RepoRoot.Path;
        var code = File.ReadAllText(Path.Combine(repo, "examples", "QuickStart", "QuickStart.cs"));
        const string begin = "    // README: begin\n", end = "    // README: end\n";
        int a = code.IndexOf(begin, StringComparison.Ordinal) + begin.Length, b = code.IndexOf(end, StringComparison.Ordinal);
        var excerpt = string.Join("\n", code[a..b].TrimEnd('\n').Split('\n').Select(l => l.Length >= 4 ? l[4..] : l.TrimStart()));
        Assert.Contains(excerpt, File.ReadAllText(Path.Combine(repo, "README.md")).Replace("\r\n", "\n"));
    }

    [Fact]
    public void The_example_trains_tests_calibrates_and_predicts()
    {
        var data = SyntheticDataset.Generate(Path.Combine(_root, "data"),
            new SyntheticDatasetOptions(Seed: 5, ImageSize: 64, TrainPerClass: 8, TestGoodPerClass: 2, TestDefectPerType: 1, Classes: ["tile"]));
        var image = Directory.EnumerateFiles(Path.Combine(data.Root, "tile", "test"), "*.png", SearchOption.AllDirectories).Order().First();
        var p = QuickStart.Run(data.Root, Path.Combine(_root, "run"), image, iterations: 4);
        Assert.True(double.IsFinite(p.Score));
        Assert.NotNull(p.IsAnomalous);               // the thresholds were stored and read back
        Assert.Equal(64 * 64, p.Map.Length);
    }

}
