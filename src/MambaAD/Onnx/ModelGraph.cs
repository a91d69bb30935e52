using MambaAD.IO;

using MambaAD.Model;
using Onnx;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Onnx;

/// <summary>
/// The whole inference graph of a <see cref="MambaADModel"/> in standard ONNX operators, read from its state_dict by
/// the official keys (spec §18): encoder layer1–3 (§2) and MFF_OCE (§3) with every BatchNorm folded into the conv
/// before it (eval mode: running statistics), the decoder (§4–§8), and the anomaly map and score (§12).
/// Input <c>image</c> (B, 3, S, S), normalised; outputs <c>anomaly_map</c> (B, S, S) smoothed, <c>score</c> (B).
/// </summary>
internal sealed class ModelGraph
{
    public const string InputName = "image", MapName = "anomaly_map", ScoreName = "score";

    private readonly GraphBuilder g;
    private readonly Dictionary<string, Tensor> sd;
    private readonly MambaADConfig config;
    private readonly OnnxExportOptions options;

    private ModelGraph(MambaADModel model, OnnxExportOptions options)
    {
        config = model.Config;
        this.options = options;
        g = new GraphBuilder(options.Opset, "MambaAD");
        sd = StateDict.Ordered(model).ToDictionary(e => e.Name, e => e.Tensor);
    }

    /// <summary>Builds the graph of <paramref name="model"/> (its weights as they are now).</summary>
    public static GraphProto Build(MambaADModel model, OnnxExportOptions options)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var m = new ModelGraph(model, options);
        int s = m.config.ImageSize;
        long?[] batch = [options.Batch is { } b ? b : null];
        m.g.Input(InputName, [.. batch, 3, s, s]);
        var f = m.Encoder(InputName);
        var z = m.MffOce(f);
        var d = m.Decoder(z);
        var (map, score) = m.AnomalyMapAndScore(f, d, s);
        m.g.Graph.Node.Add(new NodeProto { OpType = "Identity", Name = "map_out", Input = { map }, Output = { MapName } });
        m.g.Graph.Node.Add(new NodeProto { OpType = "Identity", Name = "score_out", Input = { score }, Output = { ScoreName } });
        m.g.Output(MapName, [.. batch, s, s]);
        m.g.Output(ScoreName, batch);
        return m.g.Graph;
    }

    // ---- weights ----

    private Tensor T(string key) => sd.TryGetValue(key, out var t) ? t
        : throw new MambaADException($"the model's state_dict has no {key}: the ONNX export does not know this model's layout");

    private bool Has(string key) => sd.ContainsKey(key);

    private static float[] Floats(Tensor t) => t.detach().to(float32).cpu().contiguous().data<float>().ToArray();

    private string Weight(string key) => g.Initializer(key, Floats(T(key)), T(key).shape);

    /// <summary>A Linear (out, in) weight as the (in, out) right operand of MatMul, optionally rows [from, from + count).</summary>
    private string LinearT(string key, long from = 0, long count = -1)
    {
        var w = T(key);
        if (count < 0) count = w.shape[0];
        return g.Initializer(key, Floats(w.narrow(0, from, count).t()), w.shape[1], count);
    }

    // ---- encoder and MFF_OCE ----

    /// <summary>
    /// Conv followed by an eval-mode BatchNorm, folded into one Conv: W' = W·γ/√(σ² + ε), b' = (b − μ)·γ/√(σ² + ε) + β
    /// (ε 1e-5 for every BN of the encoder and MFF_OCE).
    /// </summary>
    private string ConvBn(string x, string conv, string bn, int stride, int pad)
    {
        var w = T(conv + ".weight").to(float64);
        var scale = T(bn + ".weight").to(float64) / (T(bn + ".running_var").to(float64) + 1e-5).sqrt();
        var bias = Has(conv + ".bias") ? T(conv + ".bias").to(float64) : zeros_like(scale);
        var wf = w * scale.reshape(-1, 1, 1, 1);
        var bf = (bias - T(bn + ".running_mean").to(float64)) * scale + T(bn + ".bias").to(float64);
        var wName = g.Initializer(conv + ".weight+" + bn, Floats(wf), w.shape);
        var bName = g.Initializer(conv + ".bias+" + bn, Floats(bf), bf.shape);
        return g.Conv(x, wName, bName, (int)w.shape[2], stride, pad);
    }

    private string[] Encoder(string x)
    {
        var h = g.Relu(ConvBn(x, "net_t.conv1", "net_t.bn1", 2, 3));
        h = g.Op("MaxPool", [h], Attr.Ints("kernel_shape", 3, 3), Attr.Ints("strides", 2, 2), Attr.Ints("pads", 1, 1, 1, 1));
        var features = new string[3];
        for (int layer = 1; layer <= 3; layer++)
        {
            for (int i = 0; Has($"net_t.layer{layer}.{i}.conv1.weight"); i++)
            {
                string p = $"net_t.layer{layer}.{i}.";
                int stride = i == 0 && layer > 1 ? 2 : 1;
                var y = g.Relu(ConvBn(h, p + "conv1", p + "bn1", stride, 1));
                y = ConvBn(y, p + "conv2", p + "bn2", 1, 1);
                var shortcut = Has(p + "downsample.0.weight") ? ConvBn(h, p + "downsample.0", p + "downsample.1", stride, 0) : h;
                h = g.Relu(g.Add(y, shortcut));
            }
            features[layer - 1] = h;
        }
        return features;
    }

    private string MffOce(string[] f)
    {
        const string p = "mff_oce.";
        var a = g.Relu(ConvBn(f[0], p + "conv1", p + "bn1", 2, 1));
        var b = g.Add(g.Relu(ConvBn(f[1], p + "conv21", p + "bn21", 1, 0)), a);
        var c = g.Add(g.Relu(ConvBn(b, p + "conv2", p + "bn2", 2, 1)), g.Relu(ConvBn(f[2], p + "conv31", p + "bn31", 1, 0)));
        var x = g.Relu(ConvBn(c, p + "convf", p + "bnf", 1, 0));
        for (int i = 0; Has($"{p}bn_layer.{i}.conv1.weight"); i++)
        {
            string q = $"{p}bn_layer.{i}.";
            int stride = i == 0 ? 2 : 1;
            var y = g.Relu(ConvBn(x, q + "conv1", q + "bn1", 1, 0));
            y = g.Relu(ConvBn(y, q + "conv2", q + "bn2", stride, 1));
            y = ConvBn(y, q + "conv3", q + "bn3", 1, 0);
            var shortcut = Has(q + "downsample.0.weight") ? ConvBn(x, q + "downsample.0", q + "downsample.1", stride, 0) : x;
            x = g.Relu(g.Add(y, shortcut));
        }
        return x;
    }

    // ---- decoder ----

    /// <summary>Z (B, 512, s, s) → [D3, D2, D1] channels-first (spec §4).</summary>
    private string[] Decoder(string z)
    {
        var x = g.Transpose(z, 0, 2, 3, 1);
        var outs = new List<string>();
        int side = config.BottleneckSide;
        for (int i = 0; i < 4; i++, side *= 2)
        {
            string p = $"net_s.layers_up.{i}.";
            if (Has(p + "upsample.expand.weight")) x = PatchExpand(x, p + "upsample.", side);
            for (int j = 0; Has($"{p}blocks.{j}.finalconv11.weight"); j++) x = Lss(x, $"{p}blocks.{j}.", side);
            if (i > 0) outs.Insert(0, g.Transpose(x, 0, 3, 1, 2));
        }
        return outs.ToArray();
    }

    /// <summary>(B, H, W, 2C) → (B, 2H, 2W, C), <paramref name="side"/> = 2H (spec §4).</summary>
    private string PatchExpand(string x, string p, int side)
    {
        long c = T(p + "norm.weight").shape[0];
        var y = g.MatMul(x, LinearT(p + "expand.weight"));                   // (B, H, W, 4C)
        y = g.Transpose(g.Reshape(y, 0, 0, 0, 2, 2, c), 0, 1, 3, 2, 4, 5);  // (B, H, i, W, j, C)
        y = g.Reshape(y, -1, side, side, c);
        return g.LayerNorm(y, Weight(p + "norm.weight"), Weight(p + "norm.bias"), 1e-5f);
    }

    /// <summary>LSS module (spec §5), channels-last in and out.</summary>
    private string Lss(string x, string p, int side)
    {
        var global = x;
        for (int b = 0; Has($"{p}smm_blocks.{b}.ln_1.weight"); b++) global = Hss(global, $"{p}smm_blocks.{b}.", side);
        var xc = g.Transpose(x, 0, 3, 1, 2);
        var l5 = ConvInSilu(ConvInSilu(ConvInSilu(xc, p + "conv1b5"), p + "conv55"), p + "conv1a5");
        var l7 = ConvInSilu(ConvInSilu(ConvInSilu(xc, p + "conv1b7"), p + "conv77"), p + "conv1a7");
        var cat = g.Op("Concat", [g.Transpose(global, 0, 3, 1, 2), l5, l7], Attr.Int("axis", 1));
        var merged = g.Add(g.Conv(cat, Weight(p + "finalconv11.weight"), Weight(p + "finalconv11.bias"), 1), xc);
        return g.Transpose(merged, 0, 2, 3, 1);
    }

    /// <summary>1×1 conv with bias, or depth-wise k×k without; then InstanceNorm (no affine, ε 1e-5) and SiLU.</summary>
    private string ConvInSilu(string x, string p)
    {
        var w = T(p + ".0.weight");
        int k = (int)w.shape[2];
        long c = w.shape[0];
        var y = k == 1 ? g.Conv(x, Weight(p + ".0.weight"), Weight(p + ".0.bias"), 1)
            : g.Conv(x, Weight(p + ".0.weight"), null, k, pad: k / 2, group: (int)c);
        var ones = g.Initializer(p + ".1.ones", Enumerable.Repeat(1f, (int)c).ToArray(), c);
        var zero = g.Initializer(p + ".1.zeros", new float[c], c);
        return g.Silu(g.Op("InstanceNormalization", [y, ones, zero], Attr.Float("epsilon", 1e-5f)));
    }

    /// <summary>HSS block (spec §6): X + SS2D(LN(X)); DropPath is the identity at inference.</summary>
    private string Hss(string x, string p, int side) =>
        g.Add(x, Ss2d(g.LayerNorm(x, Weight(p + "ln_1.weight"), Weight(p + "ln_1.bias"), 1e-5f), p + "self_attention.", side));

    /// <summary>SS2D (spec §6–§8), (B, H, W, C) → (B, H, W, C).</summary>
    private string Ss2d(string x, string p, int side)
    {
        var inProj = T(p + "in_proj.weight");
        long d = inProj.shape[0] / 2;
        int l = side * side;
        var xPart = g.MatMul(x, LinearT(p + "in_proj.weight", 0, d));
        var z = g.MatMul(x, LinearT(p + "in_proj.weight", d, d));
        var conv = g.Conv(g.Transpose(xPart, 0, 3, 1, 2), Weight(p + "conv2d.weight"), Weight(p + "conv2d.bias"), 3, pad: 1, group: (int)d);
        var u = g.Reshape(g.Transpose(g.Silu(conv), 0, 2, 3, 1), -1, l, d);  // (B, L, d), pixel order

        var xProj = T(p + "x_proj_weight");
        int k = (int)xProj.shape[0], n = (int)T(p + "A_logs").shape[1], r = (int)T(p + "dt_projs_weight").shape[2];
        var weights = new ScanWeights(p, k, (int)d, r, n, l, Floats(xProj), Floats(T(p + "dt_projs_weight")),
            Floats(T(p + "dt_projs_bias")), Floats(T(p + "A_logs")), Floats(T(p + "Ds")), ScanOrder.Paths(config.Scan, side, k));
        var y = SelectiveScanGraph.Build(g, u, weights, options.ScanFormulation, options.ScanChunk);
        y = g.Reshape(y, -1, side, side, d);
        y = g.Mul(g.LayerNorm(y, Weight(p + "out_norm.weight"), Weight(p + "out_norm.bias"), 1e-5f), g.Silu(z));
        return g.MatMul(y, LinearT(p + "out_proj.weight"));
    }

    // ---- anomaly map (spec §12) ----

    private (string Map, string Score) AnomalyMapAndScore(string[] f, string[] d, int s)
    {
        string? sum = null;
        for (int i = 0; i < f.Length; i++)
        {
            // 1 − cos over channels, PyTorch's: x·y / (max(‖x‖, ε)·max(‖y‖, ε)), ε 1e-8.
            var dot = g.ReduceSum(g.Mul(f[i], d[i]), [1], keepDims: true);
            var eps = g.Scalar(1e-8f);
            var nf = g.Op("Max", [g.Op("Sqrt", [g.ReduceSum(g.Mul(f[i], f[i]), [1], keepDims: true)]), eps]);
            var nd = g.Op("Max", [g.Op("Sqrt", [g.ReduceSum(g.Mul(d[i], d[i]), [1], keepDims: true)]), eps]);
            var m = g.Sub(g.Scalar(1f), g.Div(dot, g.Mul(nf, nd)));               // (B, 1, h, w)
            float factor = 1 << (i + 2);                                            // F1 is S/4, F2 S/8, F3 S/16
            var scales = g.Initializer("resize_scales", [1f, 1f, factor, factor], 4);
            var up = g.Op("Resize", [m, "", scales], Attr.String("mode", "linear"),
                Attr.String("coordinate_transformation_mode", "align_corners"));
            sum = sum is null ? up : g.Add(sum, up);
        }
        var raw = g.Reshape(g.Div(sum!, g.Scalar(3f * f.Length)), -1, s, s);       // ÷ 9 (§12 step 3)
        var gauss = GaussianMatrix(s);
        var gaussT = new float[s * s];
        for (int i = 0; i < s; i++) for (int j = 0; j < s; j++) gaussT[j * s + i] = gauss[i * s + j];
        // scipy's separable filter as two products with the reflect-folded band matrix G: G · M · Gᵀ.
        var map = g.MatMul(g.MatMul(g.Initializer("gaussian_rows", gauss, s, s), raw), g.Initializer("gaussian_cols", gaussT, s, s));
        return (map, g.ReduceMax(map, [1, 2], keepDims: false));
    }

    /// <summary>
    /// The 1-D Gaussian of spec §12 step 4 (σ 4, 33 taps, scipy 'reflect' borders) as an S×S matrix:
    /// G[i, j] = Σ of the weights whose tap at i reads pixel j after reflection, so (G·x)[i] is the filtered x[i].
    /// </summary>
    internal static float[] GaussianMatrix(int s)
    {
        var w = GaussianFilter.Kernel(AnomalyMap.Sigma);
        int r = w.Length / 2;
        var m = new double[s * s];
        for (int i = 0; i < s; i++)
            for (int t = -r; t <= r; t++)
                m[i * s + GaussianFilter.Reflect(i + t, s)] += w[t + r];
        return m.Select(v => (float)v).ToArray();
    }
}
