using MambaAD.Tests.CommandLine;
using System.Text.Json;
using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.Imaging;
using MambaAD.IO;
using MambaAD.Tests.Data;

namespace MambaAD.Tests.Evaluation;

/// <summary>
/// <c>mambaad eval</c> end to end on a generated dataset. Class "alpha" has masks and maps that separate perfectly:
/// defect pixels score 1, everything else lies in [0, 0.5) — so every metric is 100 by hand: AUROC/AP/F1 need one
/// threshold that splits the classes; P-F1max reaches it at τ = 0.5 of the min–max normalised map (up to the 1e-8
/// guards); AU-PRO has PRO = 1 at every θ &lt; 1 while the FPR sweeps [0, 0.3). Class "beta" has no ground_truth
/// folder, so its pixel metrics are unavailable (null) and its maps are of another size (resized).
/// </summary>
[Collection("Console")]
public class EvalCommandTests
{
    private const int Size = 32;

    private static TinyData Make()
    {
        var d = new TinyData("mvtec");
        d.MvtecClass("alpha");
        d.MvtecClass("beta", masks: false);
        var ds = Dataset.Open(d.Root);
        var rng = new Random(5);
        foreach (var s in ds.Test)
        {
            var path = Path.Combine(d.Root, "..", "maps", s.ClassName, s.DefectType, s.Stem + ".npy");
            if (s.ClassName == "alpha")
            {
                var mask = s.MaskPath is null ? new byte[Size * Size] : Preprocess.Mask(s.MaskPath, Size);
                var map = mask.Select(m => m != 0 ? 1f : (float)(rng.NextDouble() * 0.5)).ToArray();
                NpyArray.FromFloats(map, Size, Size).Write(path);
            }
            else
            {
                var map = Enumerable.Range(0, 100).Select(_ => (float)rng.NextDouble() + (s.IsFolderAnomalous ? 0.5f : 0f)).ToArray();
                NpyArray.FromFloats(map, 10, 10).Write(path);
            }
        }
        return d;
    }

    private static string Maps(TinyData d) => Path.GetFullPath(Path.Combine(d.Root, "..", "maps"));

    private static (int Code, string Out, string Err) Cli(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void Cli_writes_official_metrics_json_and_table()
    {
        using var d = Make();
        var json = Path.Combine(Maps(d), "..", "out", "metrics.json");
        var (code, stdout, stderr) = Cli("eval", "--data", d.Root, "--maps", Maps(d), "--json", json, "--image-size", $"{Size}");
        Assert.True(code == 0, stderr);
        Assert.Contains("I-AUROC", stdout);
        Assert.Contains("–", stdout); // beta's pixel metrics
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var alpha = doc.RootElement.GetProperty("classes").GetProperty("alpha");
        foreach (var key in ClassMetrics.Names)
            Assert.True(Math.Abs(alpha.GetProperty(key).GetDouble() - 100) < 1e-5, $"alpha {key} = {alpha.GetProperty(key)}");
        var beta = doc.RootElement.GetProperty("classes").GetProperty("beta");
        Assert.Equal(JsonValueKind.Null, beta.GetProperty("P-AUROC").ValueKind);
        Assert.Equal(JsonValueKind.Null, beta.GetProperty("AU-PRO").ValueKind);
        Assert.InRange(beta.GetProperty("I-AUROC").GetDouble(), 0, 100);
        var mean = doc.RootElement.GetProperty("mean");
        Assert.True(Math.Abs(mean.GetProperty("P-AUROC").GetDouble() - 100) < 1e-9); // only alpha has it
        double iMean = (100 + beta.GetProperty("I-AUROC").GetDouble()) / 2;
        Assert.True(Math.Abs(mean.GetProperty("I-AUROC").GetDouble() - iMean) < 1e-9);
    }

    [Fact]
    public void Scores_csv_overrides_the_map_max()
    {
        using var d = Make();
        var ds = Dataset.Open(d.Root);
        // beta: invert the ranking through scores.csv → I-AUROC 0.
        var lines = new List<string> { "class,defect,stem,score" };
        lines.AddRange(ds.Test.Select(s => $"{s.ClassName},{s.DefectType},{s.Stem},{(s.IsFolderAnomalous ? 0 : 1)}"));
        File.WriteAllLines(Path.Combine(Maps(d), "scores.csv"), lines);
        var r = MapEvaluation.Run(new MapEvaluationOptions(d.Root, Maps(d), ImageSize: Size)).Result;
        Assert.Equal(0.0, r.Classes.Single(c => c.Key == "beta").Value.IAuroc);
    }

    [Fact]
    public void Missing_map_is_named_and_skip_bad_lists_it()
    {
        using var d = Make();
        var missing = Path.Combine(Maps(d), "alpha", "scratch", "001.npy");
        File.Delete(missing);
        var (code, _, err) = Cli("eval", "--data", d.Root, "--maps", Maps(d), "--image-size", $"{Size}");
        Assert.Equal(2, code);
        Assert.Contains(missing, err);
        Assert.Contains("anomaly map missing", err);
        var report = MapEvaluation.Run(new MapEvaluationOptions(d.Root, Maps(d), new DatasetOptions(SkipBad: true), Size));
        Assert.Contains(missing, Assert.Single(report.Warnings));
        Assert.Equal(1.0, report.Result.Classes.Single(c => c.Key == "alpha").Value.IAuroc!.Value, 12);
    }

    [Fact]
    public void Corrupt_image_size_mismatched_mask_and_unknown_layout_are_named()
    {
        using var d = Make();
        var image = d.P("alpha", "test", "good", "000.png");
        File.WriteAllText(image, "not an image");
        var e = Assert.Throws<MambaADException>(() => MapEvaluation.Run(new MapEvaluationOptions(d.Root, Maps(d), ImageSize: Size)));
        Assert.Contains(image, e.Message);
        Assert.Contains("not a readable image", e.Message);
        TinyData.WriteImage(image, 40, 30);

        var mask = d.P("alpha", "ground_truth", "scratch", "000_mask.png");
        TinyData.WriteMask(mask, 30, 30, 0, 0, 4, 4);
        e = Assert.Throws<MambaADException>(() => MapEvaluation.Run(new MapEvaluationOptions(d.Root, Maps(d), ImageSize: Size)));
        Assert.Contains($"{mask}: mask is 30×30 but its image", e.Message);

        var (code, _, err) = Cli("eval", "--data", Maps(d), "--maps", Maps(d));
        Assert.Equal(2, code);
        Assert.Contains("unknown dataset layout; found alpha/, beta/", err);
    }
}

[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection;
