using MambaAD.Imaging;

using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Encoders;

internal partial class EncoderWeights
{
    /// <summary>Where the build puts the embedded ONNX, relative to the MambaAD assembly (MambaAD.csproj).</summary>
    internal const string EmbeddedRelativePath = "weights/ResNet18.onnx";

    /// <summary>
    /// The ImageNet ResNet18 embedded in the <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> package (a CNTK 2.6 ONNX
    /// export, copied next to the MambaAD assembly as <c>weights/ResNet18.onnx</c>): its stem and layers 1–3 mapped to
    /// torchvision names. Normalisation: <see cref="InputNormalization.BgrMean"/>.
    /// </summary>
    /// <exception cref="MambaADException">When the ONNX file is absent or does not have the expected structure.</exception>
    public static EncoderWeights Embedded()
    {
        var path = LocateEmbedded();
        OnnxGraph graph;
        try { graph = OnnxModelReader.Read(path); }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new MambaADException($"embedded encoder {path} could not be read ({e.Message}); reinstall the MambaAD package", e);
        }
        var tensors = MapCntkResNet18(graph, path);
        return new EncoderWeights(Backbone.ResNet18, tensors, InputNormalization.BgrMean,
            $"embedded ImageNet ResNet18 ({EmbeddedPackage})");
    }

    internal static string LocateEmbedded()
    {
        var dirs = new[] { Path.GetDirectoryName(typeof(EncoderWeights).Assembly.Location), AppContext.BaseDirectory };
        foreach (var dir in dirs)
        {
            if (string.IsNullOrEmpty(dir)) continue;
            var p = Path.Combine(dir, EmbeddedRelativePath);
            if (File.Exists(p)) return p;
        }
        throw new MambaADException(
            $"the embedded encoder {EmbeddedRelativePath} is not next to MambaAD.dll (looked in {string.Join(", ", dirs.Where(d => !string.IsNullOrEmpty(d)).Distinct())}); " +
            $"it comes from the {EmbeddedPackage} package: rebuild/republish, or pass a .pth file instead");
    }

    /// <summary>
    /// Maps the CNTK graph's Conv→BatchNormalization pairs, in node order, to torchvision keys: the stem, then per
    /// block an optional 1×1 downsample (CNTK emits it before the block's first conv), conv1/bn1, conv2/bn2. Only the
    /// stem and layers 1–3 are taken. Each pair's kernel, stride and channel counts are checked against the encoder.
    /// </summary>
    internal static Dictionary<string, Tensor> MapCntkResNet18(OnnxGraph graph, string source)
    {
        var expected = ExpectedShapes(Backbone.ResNet18);
        // Conv output name → the BN node that consumes it.
        var bnByInput = graph.Nodes.Where(n => n.OpType == "BatchNormalization").ToDictionary(n => n.Inputs[0]);
        var pairs = new List<(OnnxNode Conv, OnnxNode Bn)>();
        foreach (var conv in graph.Nodes.Where(n => n.OpType == "Conv"))
        {
            if (!bnByInput.TryGetValue(conv.Outputs[0], out var bn))
                throw Bad(source, $"Conv {conv.Name} is not followed by a BatchNormalization");
            pairs.Add((conv, bn));
        }

        // The torchvision module names for those pairs, in CNTK's order, with the stride each must have.
        var plan = new List<(string Conv, string Bn, int Stride)> { ("conv1", "bn1", 2) };
        int[] depths = [2, 2, 2];
        for (int layer = 1; layer <= 3; layer++)
            for (int b = 0; b < depths[layer - 1]; b++)
            {
                string p = $"layer{layer}.{b}";
                bool first = b == 0 && layer > 1;
                if (first) plan.Add(($"{p}.downsample.0", $"{p}.downsample.1", 2));
                plan.Add(($"{p}.conv1", $"{p}.bn1", first ? 2 : 1));
                plan.Add(($"{p}.conv2", $"{p}.bn2", 1));
            }
        if (pairs.Count < plan.Count) throw Bad(source, $"{pairs.Count} Conv/BN pairs, need at least {plan.Count}");

        var found = new Dictionary<string, Tensor>();
        try
        {
            for (int i = 0; i < plan.Count; i++)
            {
                var (convName, bnName, stride) = plan[i];
                var (conv, bn) = pairs[i];
                var w = Initializer(graph, conv.Inputs[1], source);
                var want = expected[convName + ".weight"];
                if (!w.Dims.SequenceEqual(want))
                    throw Bad(source, $"Conv {conv.Name} for {convName} has weight [{string.Join(",", w.Dims)}], expected [{string.Join(",", want)}]");
                var strides = conv.Attributes.TryGetValue("strides", out var s) ? s.Ints : [1, 1];
                if (strides.Any(x => x != stride))
                    throw Bad(source, $"Conv {conv.Name} for {convName} has strides [{string.Join(",", strides)}], expected {stride}");
                if (conv.Attributes.TryGetValue("group", out var g) && g.I != 1)
                    throw Bad(source, $"Conv {conv.Name} is grouped");
                if (conv.Inputs.Length > 2) throw Bad(source, $"Conv {conv.Name} has a bias; torchvision's has none");
                if (bn.Attributes.TryGetValue("epsilon", out var eps) && Math.Abs(eps.F - 1e-5f) > 1e-9f)
                    throw Bad(source, $"BatchNormalization {bn.Name} has epsilon {eps.F}, the encoder uses 1e-5");
                found[convName + ".weight"] = Tensor(w);
                string[] bnKeys = ["weight", "bias", "running_mean", "running_var"]; // BN inputs [X, scale, B, mean, var]
                for (int k = 0; k < 4; k++) found[$"{bnName}.{bnKeys[k]}"] = Tensor(Initializer(graph, bn.Inputs[k + 1], source));
            }
            return Validate(found, expected, Backbone.ResNet18, $"embedded encoder {source}");
        }
        finally
        {
            foreach (var t in found.Values) t.Dispose();
        }
    }

    private static OnnxTensor Initializer(OnnxGraph graph, string name, string source) =>
        graph.Initializers.TryGetValue(name, out var t) && t.Floats is not null ? t
            : throw Bad(source, $"initializer {name} is missing or not float");

    private static Tensor Tensor(OnnxTensor t) => torch.tensor(t.Floats!, t.Dims, dtype: float32);

    private static MambaADException Bad(string source, string what) =>
        new($"embedded encoder {source} does not have the expected ResNet18 structure: {what}; reinstall the MambaAD package");
}
