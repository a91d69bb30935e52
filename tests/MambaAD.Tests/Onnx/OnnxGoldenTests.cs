using MambaAD.IO;

using MambaAD.Model;
using MambaAD.Onnx;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MambaAD.Tests.Onnx;

/// <summary>
/// The official configuration with the golden weights (../shared/golden/full_model.pt) exported with a dynamic batch:
/// ONNX Runtime's maps and scores equal TorchSharp's within 1e-4 of the map maximum on the golden input and on images
/// of other content, and equal the official implementation's saved map and scores to the golden tolerance.
/// </summary>
[Collection("Torch")]
public sealed class OnnxGoldenTests(ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("mambaad-onnx-golden-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [GoldenFact]
    public void GoldenWeightsMatchTorchOnTheGoldenInputAndOtherImages()
    {
        var golden = GoldenFile.Open("full_model.pt");
        using var model = new MambaADModel();
        StateDict.Load(model, golden.Dict("state_dict"), "full_model.pt");
        model.eval();
        var path = OnnxTestModels.Export(model, dir);
        using var ort = OnnxRuntimeModel.Load(path);

        var goldenInput = golden["input"].contiguous().data<float>().ToArray();
        var onGolden = ort.Run(goldenInput, 2);
        double rel = OnnxTestModels.AssertSame(onGolden, OnnxTestModels.Torch(model, goldenInput, 2), "golden input");
        output.WriteLine($"golden input: max|ORT − torch| / map max = {rel:E2}");
        using (var maps = tensor(onGolden.Maps, [2, 256, 256]))
        {
            Close.Forward(maps, golden["eval/amap"], "ORT amap vs official");
            Close.Forward(tensor(onGolden.Scores), golden["eval/image_scores"], "ORT image_scores vs official");
            output.WriteLine($"golden input: max|ORT − official| / map max = {Close.RelativeToMax(maps, golden["eval/amap"]):E2}");
        }

        var other = OtherContent();
        rel = OnnxTestModels.AssertSame(ort.Run(other, 2), OnnxTestModels.Torch(model, other, 2), "other content");
        output.WriteLine($"checkerboard with a scratch, noise: max|ORT − torch| / map max = {rel:E2}");
    }

    /// <summary>A checkerboard with a bright scratch, and uniform noise: content unlike the golden sinusoids.</summary>
    private static float[] OtherContent()
    {
        const int s = 256, plane = s * s;
        var x = new float[2 * 3 * plane];
        var rng = new Random(11);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < s; y++)
                for (int col = 0; col < s; col++)
                {
                    bool square = ((y / 16) + (col / 16)) % 2 == 0;
                    bool scratch = Math.Abs(y - col / 2 - 60) < 2 && col > 80 && col < 200;
                    x[c * plane + y * s + col] = scratch ? 2.2f : square ? 1.2f - 0.3f * c : -1.5f;
                    x[(3 + c) * plane + y * s + col] = (float)(rng.NextDouble() * 4 - 2);
                }
        return x;
    }
}
