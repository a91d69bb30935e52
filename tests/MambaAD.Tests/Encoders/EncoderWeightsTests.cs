using System.Collections;
using MambaAD.Encoders;
using MambaAD.Imaging;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MambaAD.Tests.Encoders;

public class EncoderWeightsTests(ITestOutputHelper output)
{
    /// <summary>full_model.pt is a whole model (net_t., mff_oce., net_s.) under "state_dict", beside input/eval/train:
    /// FromFile finds the encoder in it; F1–F3 on the golden input must match (spec §2).</summary>
    [GoldenFact]
    public void WholeCheckpointReproducesGoldenF1F2F3()
    {
        var path = SharedData.Golden("full_model.pt");
        using var weights = EncoderWeights.FromFile(path, Backbone.ResNet34);
        Assert.Equal(InputNormalization.ImageNet, weights.Normalization);
        Assert.Contains("mff_oce.*", weights.Describe());
        Assert.Contains("net_s.*", weights.Describe());
        using var enc = weights.CreateEncoder();
        Assert.Equal(4, weights.Tensors["bn1.num_batches_tracked"].item<long>());

        var golden = PyTorchUnpickler.UnpickleStateDict(path);
        var eval = (Hashtable)golden["eval"]!;
        var f = enc.call((Tensor)golden["input"]!);
        for (int i = 0; i < 3; i++)
        {
            var reference = (Tensor)eval[$"F{i + 1}"]!;
            Assert.Equal(reference.shape, f[i].shape);
            double maxRef = reference.abs().max().item<float>();
            double maxDiff = (f[i] - reference).abs().max().item<float>();
            double worst = ((f[i] - reference).abs() - 1e-4 * reference.abs()).max().item<float>();
            output.WriteLine($"F{i + 1}: max|diff| {maxDiff:E2}, max|ref| {maxRef:F3}, relative {maxDiff / maxRef:E2}");
            Assert.True(worst <= 1e-4 * maxRef, $"F{i + 1}: max|diff| {maxDiff} exceeds rtol 1e-4, atol {1e-4 * maxRef}");
        }
    }

    [Fact]
    public void BareTorchvisionStateDictIgnoresFcAndLayer4()
    {
        using var enc = new ResNetEncoder(Backbone.ResNet18);
        var table = new Hashtable();
        foreach (var (k, t) in enc.state_dict()) table[k] = t;
        using var fc = zeros(1000, 512);
        using var l4 = zeros(512, 256, 3, 3);
        table["fc.weight"] = fc;
        table["layer4.0.conv1.weight"] = l4;
        var (found, ignored) = EncoderWeights.SelectEncoderEntries(table, EncoderWeights.ExpectedShapes(Backbone.ResNet18));
        Assert.Equal(enc.state_dict().Count, found.Count);
        Assert.Equal(new[] { "fc", "layer4" }, ignored);
    }

    [Fact]
    public void SafetensorsRoundTrip()
    {
        var dir = Directory.CreateTempSubdirectory("enc");
        try
        {
            var path = Path.Combine(dir.FullName, "r18.safetensors");
            using var src = new ResNetEncoder(Backbone.ResNet18);
            src.save_safetensors(path);
            using var w = EncoderWeights.FromFile(path, Backbone.ResNet18);
            using var dst = w.CreateEncoder();
            var a = src.state_dict();
            foreach (var (k, t) in dst.state_dict()) Assert.True(t.eq(a[k]).all().item<bool>(), k);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void MissingFileIsOneLineNamingTheFile()
    {
        var e = Assert.Throws<MambaADException>(() => EncoderWeights.FromFile("/nonexistent/resnet34.pth"));
        Assert.Contains("/nonexistent/resnet34.pth", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void LegacyAndForeignFilesAreExplained()
    {
        var dir = Directory.CreateTempSubdirectory("enc");
        try
        {
            var legacy = Path.Combine(dir.FullName, "old.pth");
            File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]);
            var e = Assert.Throws<MambaADException>(() => EncoderWeights.FromFile(legacy));
            Assert.Contains(legacy, e.Message);
            Assert.Contains("legacy format", e.Message);
            Assert.Contains("_use_new_zipfile_serialization=True", e.Message);

            var text = Path.Combine(dir.FullName, "notes.pth");
            File.WriteAllText(text, "hello");
            e = Assert.Throws<MambaADException>(() => EncoderWeights.FromFile(text));
            Assert.Contains(text, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void WrongKeysListMissingAndMisShapedNamingTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("enc");
        try
        {
            // A resnet18 file offered as resnet34: layer1.2.*, layer2.2/3.*, … are missing.
            var path = Path.Combine(dir.FullName, "r18.pth");
            using (var r18 = new ResNetEncoder(Backbone.ResNet18)) r18.save_py(path);
            var e = Assert.Throws<MambaADException>(() => EncoderWeights.FromFile(path, Backbone.ResNet34));
            Assert.Contains(path, e.Message);
            Assert.Contains("missing", e.Message);
            Assert.Contains("layer1.2.conv1.weight", e.Message);
            Assert.DoesNotContain('\n', e.Message);

            // Right names, wrong shape.
            var table = new Dictionary<string, Tensor>();
            using var enc = new ResNetEncoder(Backbone.ResNet18);
            foreach (var (k, t) in enc.state_dict()) table[k] = t;
            using var bad = zeros(32, 3, 7, 7);
            table["conv1.weight"] = bad;
            e = Assert.Throws<MambaADException>(() =>
                EncoderWeights.Validate(table, EncoderWeights.ExpectedShapes(Backbone.ResNet18), Backbone.ResNet18, "encoder weights file x.pth"));
            Assert.Contains("conv1.weight [32,3,7,7] vs [64,3,7,7]", e.Message);
            Assert.Contains("x.pth", e.Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void LoadIntoAnotherBackboneIsRefused()
    {
        var dir = Directory.CreateTempSubdirectory("enc");
        try
        {
            var path = Path.Combine(dir.FullName, "r18.pth");
            using (var r18 = new ResNetEncoder(Backbone.ResNet18)) r18.save_py(path);
            using var w = EncoderWeights.FromFile(path, Backbone.ResNet18);
            using var r34 = new ResNetEncoder(Backbone.ResNet34);
            var e = Assert.Throws<MambaADException>(() => w.LoadInto(r34));
            Assert.Contains("resnet18", e.Message);
        }
        finally { dir.Delete(true); }
    }
}
