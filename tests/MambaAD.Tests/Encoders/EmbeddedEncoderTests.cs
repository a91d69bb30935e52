using MambaAD.Encoders;
using MambaAD.Imaging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MambaAD.Tests.Encoders;

/// <summary>The embedded ResNet18 (CNTK ONNX) mapped into <see cref="ResNetEncoder"/> against ONNX Runtime.</summary>
public class EmbeddedEncoderTests(ITestOutputHelper output)
{
    /// <summary>The Relu after the last Add of layer1, layer2, layer3 in the CNTK graph.</summary>
    private static readonly string[] LayerEnds = ["ReLU283_Output_0", "ReLU315_Output_0", "ReLU347_Output_0"];

    [Fact]
    public void EmbeddedWeightsFillEveryResnet18KeyWithBgrMean()
    {
        using var w = EncoderWeights.Embedded();
        Assert.Equal(Backbone.ResNet18, w.Backbone);
        Assert.Same(InputNormalization.BgrMean, w.Normalization);
        Assert.Contains("Microsoft.ML.DnnImageFeaturizer.ResNet18", w.Describe());
        var expected = EncoderWeights.ExpectedShapes(Backbone.ResNet18);
        var missing = expected.Keys.Where(k => !k.EndsWith("num_batches_tracked") && !w.Tensors.ContainsKey(k)).ToList();
        Assert.Empty(missing);
        foreach (var (k, t) in w.Tensors) Assert.Equal(expected[k], t.shape);
    }

    /// <summary>The package's ResNetPreprocess.onnx subtracts a per-pixel mean image; BgrMean holds its channel
    /// averages (B, G, R).</summary>
    [Fact]
    public void BgrMeanIsTheChannelAverageOfThePackageMeanImage()
    {
        var pkg = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") ??
            Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
            "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        Assert.True(File.Exists(pkg), $"{pkg} not in the NuGet cache (restored with MambaAD's package reference)");
        var g = OnnxModelReader.Read(pkg);
        Assert.Equal(new[] { "Split", "Concat", "Sub" }, g.Nodes.Select(n => n.OpType));
        var mean = g.Initializers[g.Nodes[2].Inputs[1]];
        Assert.Equal(new long[] { 1, 3, 224, 224 }, mean.Dims);
        int plane = 224 * 224;
        for (int c = 0; c < 3; c++)
        {
            double avg = mean.Floats!.AsSpan(c * plane, plane).ToArray().Average(x => (double)x);
            output.WriteLine($"channel {"BGR"[c]}: average {avg:F6}, min {mean.Floats.AsSpan(c * plane, plane).ToArray().Min()}, max {mean.Floats.AsSpan(c * plane, plane).ToArray().Max()}");
            Assert.Equal(avg, InputNormalization.BgrMean.Mean[c], 4);
        }
    }

    [Fact]
    public void MatchesOnnxRuntimeAtTheEndOfLayers1To3()
    {
        // A deterministic 224×224 RGB image, normalised as the weights ask (BGR minus channel means).
        const int size = 224;
        var rgb = new byte[size * size * 3];
        var rng = new Random(7);
        for (int y = 0; y < size; y++)
            for (int col = 0; col < size; col++)
                for (int c = 0; c < 3; c++)
                    rgb[(y * size + col) * 3 + c] = (byte)Math.Clamp(128 + 90 * Math.Sin(0.05 * col * (c + 1) + 0.03 * y) + rng.Next(-30, 31), 0, 255);
        var input = new float[3 * size * size];
        InputNormalization.BgrMean.Normalize(rgb, size, size, input);

        // ONNX Runtime first, then dispose it: its spinning thread pool slows libtorch (toolchain-notes).
        var model = OnnxGraphOutputs.Add(File.ReadAllBytes(EncoderWeights.LocateEmbedded()), LayerEnds);
        var ort = new float[3][];
        var ortShapes = new int[3][];
        using (var options = new SessionOptions())
        {
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            using var session = new InferenceSession(model, options);
            var feed = new[] { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), new DenseTensor<float>(input, [1, 3, size, size])) };
            using var results = session.Run(feed, LayerEnds);
            for (int i = 0; i < 3; i++)
            {
                var t = results.Single(r => r.Name == LayerEnds[i]).AsTensor<float>();
                ort[i] = t.ToArray();
                ortShapes[i] = t.Dimensions.ToArray();
            }
        }

        using var weights = EncoderWeights.Embedded();
        using var enc = weights.CreateEncoder();
        using var x = torch.tensor(input, [1, 3, size, size]);
        var f = enc.call(x);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(ortShapes[i].Select(d => (long)d), f[i].shape);
            using var reference = torch.tensor(ort[i], f[i].shape);
            double maxDiff = (f[i] - reference).abs().max().item<float>();
            double maxRef = reference.abs().max().item<float>();
            output.WriteLine($"layer{i + 1} {string.Join("x", f[i].shape)}: max|torch − ORT| {maxDiff:E2}, max|ORT| {maxRef:F2}, relative {maxDiff / maxRef:E2}");
            Assert.True(maxDiff <= 1e-5 * maxRef + 1e-4, $"layer{i + 1}: max|diff| {maxDiff}");
            f[i].Dispose();
        }
    }
}

/// <summary>
/// Test helper: appends graph outputs (ValueInfoProto with a float tensor type, no shape) to an ONNX ModelProto, so
/// ONNX Runtime returns intermediate values. Rewrites only the graph field (ModelProto.graph = 7, GraphProto.output =
/// 12); protobuf allows a repeated field's entries anywhere in the message, so appending them to the graph bytes works.
/// </summary>
internal static class OnnxGraphOutputs
{
    public static byte[] Add(byte[] model, IEnumerable<string> names)
    {
        var extra = new MemoryStream();
        foreach (var name in names)
        {
            // TypeProto { tensor_type (1) { elem_type (1) = FLOAT (1) } }
            var type = Message(1, [0x08, 0x01]);
            var valueInfo = Concat(Message(1, System.Text.Encoding.UTF8.GetBytes(name)), Message(2, type));
            extra.Write(Message(12, valueInfo));
        }
        var result = new MemoryStream();
        int pos = 0;
        bool done = false;
        while (pos < model.Length)
        {
            int start = pos;
            ulong key = ReadVarint(model, ref pos);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: ReadVarint(model, ref pos); break;
                case 1: pos += 8; break;
                case 5: pos += 4; break;
                case 2:
                    int len = (int)ReadVarint(model, ref pos);
                    if (field == 7)
                    {
                        result.Write(Message(7, Concat(model.AsSpan(pos, len).ToArray(), extra.ToArray())));
                        pos += len;
                        done = true;
                        continue;
                    }
                    pos += len;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
            result.Write(model, start, pos - start);
        }
        if (!done) throw new InvalidDataException("no graph in the model");
        return result.ToArray();
    }

    private static byte[] Message(int field, byte[] payload)
    {
        var m = new MemoryStream();
        WriteVarint(m, (ulong)(field << 3 | 2));
        WriteVarint(m, (ulong)payload.Length);
        m.Write(payload);
        return m.ToArray();
    }

    private static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static ulong ReadVarint(byte[] b, ref int pos)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte x = b[pos++];
            v |= (ulong)(x & 0x7F) << shift;
            if ((x & 0x80) == 0) return v;
        }
    }
}
