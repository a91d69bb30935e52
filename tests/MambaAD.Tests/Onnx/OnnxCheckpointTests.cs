using System.Globalization;
using MambaAD.Checkpoints;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.Tests.CommandLine;

namespace MambaAD.Tests.Onnx;

/// <summary>
/// An exported model is a checkpoint like any other: <c>mambaad export</c> writes it, and <c>predict</c> on the .onnx
/// gives the scores.csv of the .pth it came from (the same rows and verdicts; scores within 1e-4 of the map maximum).
/// </summary>
[Collection("Torch")]
public sealed class OnnxCheckpointTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("mambaad-onnx-ckpt-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Predict_through_the_onnx_export_gives_the_scores_of_its_checkpoint()
    {
        var ckpt = Path.Combine(dir, "ckpt");
        using (var model = OnnxTestModels.Small())
            Checkpoint.Save(ckpt, model, OnnxTestModels.Info(model) with { Thresholds = new Thresholds(0.3, 0.125, "test") });
        var images = Path.Combine(dir, "images");
        Directory.CreateDirectory(images);
        var rng = new Random(3);
        foreach (var (name, w, h) in new[] { ("a.png", 64, 64), ("b.png", 80, 48), ("c.png", 100, 100) })
        {
            var rgb = new byte[w * h * 3];
            rng.NextBytes(rgb);
            File.WriteAllBytes(Path.Combine(images, name), ImageEncoder.PngRgb(rgb, w, h));
        }
        var onnx = Path.Combine(dir, "model.onnx");
        var (code, _, err) = CliRunner.Run("export", "--checkpoint", ckpt, "--out", onnx, "--dynamic-batch");
        Assert.True(code == 0, err);

        var fromPth = Predict(ckpt, "pth");
        var fromOnnx = Predict(onnx, "onnx");
        Assert.Equal(fromPth.Select(r => (r.Path, r.Verdict)), fromOnnx.Select(r => (r.Path, r.Verdict)));
        using var predictor = Predictor.Load(ckpt);
        double mapMax = Directory.EnumerateFiles(images).Max(f => predictor.Predict(f).Map.Max());
        for (int i = 0; i < fromPth.Count; i++)
            Assert.True(Math.Abs(fromPth[i].Score - fromOnnx[i].Score) <= 1e-4 * mapMax, $"{fromPth[i].Path}: {fromPth[i].Score} vs {fromOnnx[i].Score}");
        Assert.All(fromOnnx, r => Assert.NotEqual("", r.Verdict)); // the image threshold came from the model's metadata

        List<(string Path, double Score, string Verdict)> Predict(string checkpoint, string name)
        {
            var outDir = Path.Combine(dir, name);
            var (c, _, e) = CliRunner.Run("predict", "--checkpoint", checkpoint, "--out", outDir, images);
            Assert.True(c == 0, e);
            Assert.True(File.Exists(Path.Combine(outDir, "masks", "a.png")), "the pixel threshold came with the model");
            return File.ReadAllLines(Path.Combine(outDir, "scores.csv")).Skip(1).Select(l => l.Split(','))
                .Select(f => (f[0], double.Parse(f[1], CultureInfo.InvariantCulture), f[2])).ToList();
        }
    }
}
