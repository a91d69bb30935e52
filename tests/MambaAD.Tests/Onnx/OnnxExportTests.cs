using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Onnx;
using MambaAD.Ssm;
using Xunit.Abstractions;

namespace MambaAD.Tests.Onnx;

/// <summary>
/// The export on small random models (ResNet18, 64², depths 2,2,2,2, BatchNorms with random statistics): ONNX
/// Runtime's maps and scores equal TorchSharp's within 1e-4 of the map maximum, for every scan method and direction
/// count, both scan formulations, fixed and dynamic batch; the metadata reads back.
/// </summary>
[Collection("Torch")]
public sealed class OnnxExportTests(ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("mambaad-onnx-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    public static TheoryData<ScanType, int> ScanCases()
    {
        var data = new TheoryData<ScanType, int>();
        foreach (var scan in Enum.GetValues<ScanType>())
            foreach (var k in new[] { 2, 4, 8 })
                data.Add(scan, k);
        return data;
    }

    [Theory]
    [MemberData(nameof(ScanCases))]
    public void EveryScanMethodAndDirectionCountMatchesTorch(ScanType scan, int directions)
    {
        using var model = OnnxTestModels.Small(scan, directions, seed: 10 + (int)scan * 3 + directions);
        var input = OnnxTestModels.Input(1, 64, seed: 5);
        var path = OnnxTestModels.Export(model, dir, new OnnxExportOptions { Batch = 1 });
        using var ort = OnnxRuntimeModel.Load(path);
        double rel = OnnxTestModels.AssertSame(ort.Run(input, 1), OnnxTestModels.Torch(model, input, 1), $"{scan} ×{directions}");
        output.WriteLine($"{ScanOrder.Name(scan)} ×{directions}: max|Δ| / map max = {rel:E2}");
    }

    [Theory]
    [InlineData("sequential", 0)]
    [InlineData("chunked", 16)]
    [InlineData("chunked", 8)]
    public void DynamicBatchOf1And8MatchesTorchInBothScanFormulations(string scanFormulation, int chunk)
    {
        var formulation = Enum.Parse<ScanFormulation>(scanFormulation, ignoreCase: true);
        using var model = OnnxTestModels.Small(seed: 2);
        var path = OnnxTestModels.Export(model, dir, new OnnxExportOptions { ScanFormulation = formulation, ScanChunk = chunk });
        using var ort = OnnxRuntimeModel.Load(path);
        Assert.Null(ort.FixedBatch);
        foreach (var batch in new[] { 1, 8 })
        {
            var input = OnnxTestModels.Input(batch, 64, seed: batch);
            double rel = OnnxTestModels.AssertSame(ort.Run(input, batch), OnnxTestModels.Torch(model, input, batch), $"{formulation} batch {batch}");
            output.WriteLine($"{formulation} (chunk {chunk}), batch {batch}: max|Δ| / map max = {rel:E2}");
        }
    }

    [Fact]
    public void FixedBatchRunsAnyCountInSlicesOfItsBatch()
    {
        using var model = OnnxTestModels.Small(seed: 4);
        var path = OnnxTestModels.Export(model, dir, new OnnxExportOptions { Batch = 2 });
        using var ort = OnnxRuntimeModel.Load(path);
        Assert.Equal(2, ort.FixedBatch);
        var input = OnnxTestModels.Input(3, 64, seed: 9);
        double rel = OnnxTestModels.AssertSame(ort.Run(input, 3), OnnxTestModels.Torch(model, input, 3), "fixed batch 2, 3 images");
        output.WriteLine($"fixed batch 2, 3 images: max|Δ| / map max = {rel:E2}");
    }

    [Fact]
    public void MetadataCarriesSizeNormalisationClassesAndThresholdsAtTheNewestOpset()
    {
        using var model = OnnxTestModels.Small(scan: ScanType.Zigzag, directions: 4);
        var path = Path.Combine(dir, "bgr.onnx");
        OnnxExport.Export(model, OnnxTestModels.Info(model, InputNormalization.BgrMean), path, new OnnxExportOptions { Opset = OnnxExportOptions.MaxOpset });
        using var ort = OnnxRuntimeModel.Load(path);
        var input = OnnxTestModels.Input(1, 64, seed: 8);
        OnnxTestModels.AssertSame(ort.Run(input, 1), OnnxTestModels.Torch(model, input, 1), $"opset {OnnxExportOptions.MaxOpset}");
        Assert.Equal(64, ort.ImageSize);
        Assert.Equal(InputNormalization.BgrMean.ChannelOrder, ort.Normalization.ChannelOrder);
        Assert.Equal(InputNormalization.BgrMean.Mean, ort.Normalization.Mean);
        Assert.Equal(InputNormalization.BgrMean.Std, ort.Normalization.Std);
        Assert.Equal(InputNormalization.BgrMean.Scale, ort.Normalization.Scale);
        Assert.Equal(["carpet", "tile"], ort.Classes);
        Assert.Equal(0.25, ort.Thresholds?.Image);
        Assert.Equal(0.125, ort.Thresholds?.Pixel);
        Assert.Equal("zigzag", ort.Metadata[OnnxMetadata.Scan]);
        Assert.Equal("4", ort.Metadata[OnnxMetadata.Directions]);
        Assert.Equal("2,2,2,2", ort.Metadata[OnnxMetadata.Depths]);
        Assert.Equal("resnet18", ort.Metadata[OnnxMetadata.Backbone]);
        Assert.Equal(OnnxMetadata.ProjectVersion, ort.Metadata[OnnxMetadata.Version]);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(24)]
    public void UnsupportedOpsetsAreRefusedWithTheRange(int opset)
    {
        using var model = OnnxTestModels.Small();
        var e = Assert.Throws<MambaADException>(() => OnnxTestModels.Export(model, dir, new OnnxExportOptions { Opset = opset }));
        Assert.Contains($"--opset {opset} is not supported: use 17 to 23", e.Message);
    }

    [Fact]
    public void GaussianMatrixIsScipysReflectFilter()
    {
        // G · x against the reference filter on a 1-row image (axis 1 only): every border case of 'reflect'.
        const int s = 20;
        var g = ModelGraph.GaussianMatrix(s);
        var x = Enumerable.Range(0, s).Select(i => Math.Sin(i * 0.7) + i * 0.1).ToArray();
        var expected = (double[])x.Clone();
        MambaAD.Model.GaussianFilter.Apply(expected, 1, s);
        for (int i = 0; i < s; i++)
        {
            double actual = 0;
            for (int j = 0; j < s; j++) actual += g[i * s + j] * x[j];
            Assert.Equal(expected[i], actual, 6);
        }
    }
}
