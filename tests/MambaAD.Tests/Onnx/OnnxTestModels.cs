using MambaAD.Encoders;
using MambaAD.IO;
using MambaAD.Model;
using MambaAD.Onnx;
using MambaAD.Ssm;
using MambaAD.Checkpoints;
using MambaAD.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Onnx;

/// <summary>Models, inputs and the one comparison of the ONNX tests: TorchSharp's Predict against ONNX Runtime's run of the export.</summary>
internal static class OnnxTestModels
{
    /// <summary>
    /// A small random model (ResNet18, 64², depths 2,2,2,2: stages of 2², 4², 8², 16²) whose BatchNorms have random
    /// statistics and affine parameters, so that folding them is exercised.
    /// </summary>
    public static MambaADModel Small(ScanType scan = ScanType.Hilbert, int directions = 8, int seed = 1, int imageSize = 64)
    {
        manual_seed(seed);
        var model = new MambaADModel(new MambaADConfig
        {
            Backbone = Backbone.ResNet18, ImageSize = imageSize, Depths = [2, 2, 2, 2], Scan = scan, Directions = directions,
        });
        using (no_grad())
        {
            var entries = StateDict.Ordered(model);
            var norms = entries.Where(e => e.Name.EndsWith(".running_mean")).Select(e => e.Name[..^"running_mean".Length]).ToHashSet();
            foreach (var (name, t) in entries)
            {
                if (name.EndsWith("running_mean")) t.copy_(randn_like(t) * 0.1);
                else if (name.EndsWith("running_var")) t.copy_(rand_like(t) + 0.5);
                else if (name.EndsWith(".weight") && norms.Contains(name[..^"weight".Length])) t.copy_(rand_like(t) + 0.5);
                else if (name.EndsWith(".bias") && norms.Contains(name[..^"bias".Length])) t.copy_(randn_like(t) * 0.1);
                else if (name.EndsWith("A_logs")) t.add_(randn_like(t) * 0.2);
                else if (name.EndsWith("Ds")) t.copy_(1 + randn_like(t) * 0.2);
            }
        }
        model.eval();
        return model;
    }

    public static CheckpointInfo Info(MambaADModel model, InputNormalization? normalization = null) =>
        new(CheckpointInfo.CurrentFormat, model.Config, "test weights", normalization ?? InputNormalization.ImageNet,
            ["carpet", "tile"], new Thresholds(0.25, 0.125, "test"), null, "2026-01-01T00:00:00Z");

    /// <summary>Smooth sinusoids plus noise, like the golden input, in (B, 3, S, S).</summary>
    public static float[] Input(int batch, int size, int seed)
    {
        var rng = new Random(seed);
        var x = new float[batch * 3 * size * size];
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < 3; c++)
            {
                double fx = rng.NextDouble() * 0.3, fy = rng.NextDouble() * 0.3, ph = rng.NextDouble() * 6;
                for (int i = 0; i < size * size; i++)
                    x[((b * 3 + c) * size * size) + i] = (float)(Math.Sin(fx * (i % size) + fy * (i / size) + ph) + 0.3 * (rng.NextDouble() - 0.5));
            }
        return x;
    }

    public static AnomalyMaps Torch(MambaADModel model, float[] input, int batch) => model.Run(input, batch);

    public static string Export(MambaADModel model, string dir, OnnxExportOptions? options = null, string name = "model.onnx")
    {
        var path = Path.Combine(dir, name);
        OnnxExport.Export(model, Info(model), path, options);
        return path;
    }

    /// <summary>max |ORT − torch| over maps and scores, divided by max |torch map|; asserts it is within 1e-4.</summary>
    public static double AssertSame(AnomalyMaps ort, AnomalyMaps torchResult, string what)
    {
        Assert.Equal(torchResult.Maps.Length, ort.Maps.Length);
        Assert.Equal(torchResult.Scores.Length, ort.Scores.Length);
        double max = torchResult.Maps.Max(v => Math.Abs((double)v));
        double diff = 0;
        for (int i = 0; i < ort.Maps.Length; i++) diff = Math.Max(diff, Math.Abs((double)ort.Maps[i] - torchResult.Maps[i]));
        for (int i = 0; i < ort.Scores.Length; i++) diff = Math.Max(diff, Math.Abs((double)ort.Scores[i] - torchResult.Scores[i]));
        Assert.True(max > 0 && !double.IsNaN(diff), $"{what}: degenerate maps (max {max}, diff {diff})");
        Assert.True(diff <= 1e-4 * max, $"{what}: max |ORT − torch| {diff:E3} > 1e-4 · map max {max:G4}");
        return diff / max;
    }
}
