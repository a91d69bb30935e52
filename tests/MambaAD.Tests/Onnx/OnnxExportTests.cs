using System.Diagnostics;
using MambaAD.Onnx;
using MambaAD.Ssm;
using Xunit.Abstractions;

namespace MambaAD.Tests.Onnx;

/// <summary>The export on small random models: ONNX Runtime's maps and scores equal TorchSharp's.</summary>
[Collection("Torch")]
public sealed class OnnxExportTests(ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("mambaad-onnx-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Theory]
    [InlineData(ScanFormulation.Sequential, 0)]
    [InlineData(ScanFormulation.Chunked, 16)]
    public void SmallModelMatchesTorch(ScanFormulation formulation, int chunk)
    {
        using var model = OnnxTestModels.Small();
        const int batch = 2;
        var input = OnnxTestModels.Input(batch, 64, seed: 3);
        var expected = OnnxTestModels.Torch(model, input, batch);
        var sw = Stopwatch.StartNew();
        var path = OnnxTestModels.Export(model, dir, new OnnxExportOptions { ScanFormulation = formulation, ScanChunk = chunk });
        output.WriteLine($"export {sw.ElapsedMilliseconds} ms, {new FileInfo(path).Length / 1e6:F1} MB");
        sw.Restart();
        using var ort = OnnxRuntimeModel.Load(path);
        output.WriteLine($"load {sw.ElapsedMilliseconds} ms");
        sw.Restart();
        var actual = ort.Run(input, batch);
        output.WriteLine($"run {sw.ElapsedMilliseconds} ms");
        double rel = OnnxTestModels.AssertSame(actual, expected, $"{formulation}");
        output.WriteLine($"{formulation}: max|Δ| / map max = {rel:E2}");
    }
}
