using Onnx;

namespace MambaAD.Onnx;

/// <summary>How the exported graph runs the selective scan's recurrence (spec §7.3) over the sequence.</summary>
internal enum ScanFormulation
{
    /// <summary>One ONNX <c>Scan</c> over the L steps, all K directions and the batch in each step.</summary>
    Sequential,

    /// <summary>
    /// The sequence cut into chunks of <see cref="OnnxExportOptions.ScanChunk"/> steps: one <c>Scan</c> runs every chunk
    /// at once from a zero state, a short <c>Scan</c> over the chunks carries the state across their borders, and a
    /// second pass over the chunks restarts each from its true initial state. About twice the arithmetic of
    /// <see cref="Sequential"/>, in L/T + 2T steps instead of L.
    /// </summary>
    Chunked,
}

/// <summary>One SS2D block's per-direction parameters (spec §7.2), as the state_dict stores them, and its direction paths.</summary>
internal sealed record ScanWeights(string Prefix, int K, int D, int R, int N, int L, float[] XProjWeight, float[] DtProjsWeight,
    float[] DtProjsBias, float[] ALogs, float[] Ds, long[] Paths);

/// <summary>
/// Emits SS2D's core (spec §7.2–§8.3) in standard ONNX operators: u (B, L, d) in pixel order → y (B, L, d) in pixel
/// order. The projections act per pixel, so x_proj runs once in pixel order and its rows are gathered into every
/// direction's scan order with one constant-index Gather (the HS encoder); the recurrence runs for all K directions
/// and the whole batch at once; the HS decoder is the inverse gather, then a sum over directions. The D·u skip term
/// of every direction lands on the same pixel, so it is added once with Σ_k D_k.
/// </summary>
internal static class SelectiveScanGraph
{
    public static string Build(GraphBuilder g, string u, ScanWeights w, ScanFormulation formulation, int chunk)
    {
        int k = w.K, d = w.D, r = w.R, n = w.N, l = w.L, width = r + 2 * n;
        string p = w.Prefix;

        // x_proj (K, R+2N, d) as one (d, K·(R+2N)) matrix: xDbl[b, pixel, k, :] = x_proj_weight[k] · u[b, pixel].
        var xProjT = new float[d * k * width];
        for (int j = 0; j < k * width; j++)
            for (int c = 0; c < d; c++)
                xProjT[c * k * width + j] = w.XProjWeight[j * d + c];
        var xDbl = g.Reshape(g.MatMul(u, g.Initializer(p + "x_proj_weight", xProjT, d, k * width)), -1, (long)l * k, width);

        // HS encoder: row t·K + k of the scan-order tensor is pixel π_k[t] of direction k.
        var toScan = new long[l * k];
        var toPixel = new long[l * k];
        for (int dir = 0; dir < k; dir++)
            for (int t = 0; t < l; t++)
            {
                long pixel = w.Paths[dir * l + t];
                toScan[t * k + dir] = pixel * k + dir;
                toPixel[pixel * k + dir] = (long)t * k + dir;
            }
        var scanIdx = g.Initializer(p + "scan_order", toScan, l, k);
        var pixelIdx = g.Initializer(p + "pixel_order", toPixel, l, k);
        var pathIdx = g.Initializer(p + "paths", toScan.Select(i => i / k).ToArray(), l, k);
        var xs = g.Gather(xDbl, scanIdx, 1);                       // (B, L, K, R+2N), scan order
        var us = g.Gather(u, pathIdx, 1);                          // (B, L, K, d)

        // δ = softplus(dt_projs_weight[k] · δ_low + bias) (§7.3 steps 2–3), as (B, L, K, 1, d). The state is kept as
        // (…, K, N, d), channels innermost: ONNX Runtime broadcasts a Mul along long contiguous runs far faster than
        // along runs of N = 16 (the (…, d, N) layout spent most of the scan's time in broadcasting Muls).
        var dtT = new float[k * r * d];                            // (K, R, d)
        for (int dir = 0; dir < k; dir++)
            for (int c = 0; c < d; c++)
                for (int j = 0; j < r; j++)
                    dtT[(dir * r + j) * d + c] = w.DtProjsWeight[(dir * d + c) * r + j];
        var low = g.Unsqueeze(g.Slice(xs, 3, 0, r), 3);           // (B, L, K, 1, R)
        var raw = g.MatMul(low, g.Initializer(p + "dt_projs_weight", dtT, k, r, d));
        var delta = Softplus(g, g.Add(raw, g.Initializer(p + "dt_projs_bias", w.DtProjsBias, k, 1, d)));
        var deltaU = g.Mul(delta, g.Unsqueeze(us, 3));             // δ·u, (B, L, K, 1, d)
        var bCols = g.Reshape(g.Slice(xs, 3, r, r + n), -1, l, k, n, 1);
        var cRows = g.Reshape(g.Slice(xs, 3, r + n, r + 2 * n), -1, l, k, 1, n);
        var a = new float[k * n * d];                              // A = −exp(A_log), as (K, N, d)
        for (int dir = 0; dir < k; dir++)
            for (int c = 0; c < d; c++)
                for (int j = 0; j < n; j++)
                    a[(dir * n + j) * d + c] = -MathF.Exp(w.ALogs[(dir * d + c) * n + j]);
        var aName = g.Initializer(p + "A", a, k, n, d);

        var y = formulation switch
        {
            ScanFormulation.Sequential => Sequential(g, delta, deltaU, bCols, cRows, aName, k, d, n),
            ScanFormulation.Chunked => Chunked(g, delta, deltaU, bCols, cRows, aName, k, d, n, l, chunk),
            _ => throw new ArgumentOutOfRangeException(nameof(formulation)),
        };                                                         // (B, L, K, 1, d), scan order

        // HS decoder + merge: back to pixel order, sum over the directions; then Σ_k D_k · u.
        var merged = g.ReduceSum(g.Gather(g.Reshape(y, -1, (long)l * k, d), pixelIdx, 1), [2], keepDims: false);
        var dSum = new float[d];
        for (int dir = 0; dir < k; dir++)
            for (int c = 0; c < d; c++) dSum[c] += w.Ds[dir * d + c];
        return g.Add(merged, g.Mul(u, g.Initializer(p + "Ds_sum", dSum, d)));
    }

    /// <summary>
    /// The state update h ← exp(δA)·h + δu·B and the read-out y = h·C of one step for every direction at once
    /// (§7.3 step 4): the body of the Scan. State (…, K, N, d); step inputs δ, δu (…, K, 1, d), B (…, K, N, 1),
    /// C (…, K, 1, N). With <paramref name="readOut"/> false the body only advances the state.
    /// </summary>
    private static GraphBuilder StepBody(GraphBuilder g, string aName, bool readOut)
    {
        var body = g.Subgraph("selective_scan_step");
        string h = body.Unique("h"), dl = body.Unique("delta_t"), du = body.Unique("delta_u_t"), bt = body.Unique("B_t"), ct = body.Unique("C_t");
        foreach (var name in readOut ? new[] { h, dl, du, bt, ct } : [h, dl, du, bt])
            body.Graph.Input.Add(GraphBuilder.ValueInfo(name, null));
        var next = body.Add(body.Mul(body.Exp(body.Mul(dl, aName)), h), body.Mul(du, bt));
        body.Graph.Output.Add(GraphBuilder.ValueInfo(next, null));
        if (readOut) body.Graph.Output.Add(GraphBuilder.ValueInfo(body.MatMul(ct, next), null));
        return body;
    }

    private static string Sequential(GraphBuilder g, string delta, string deltaU, string bCols, string cRows, string aName, int k, int d, int n)
    {
        var h0 = Zeros(g, delta, k, n, d);
        var body = StepBody(g, aName, readOut: true);
        var outs = g.OpN("Scan", [h0, delta, deltaU, bCols, cRows], 2,
            Attr.Graph("body", body.Graph), Attr.Int("num_scan_inputs", 4),
            Attr.Ints("scan_input_axes", 1, 1, 1, 1), Attr.Ints("scan_output_axes", 1));
        return outs[1];
    }

    private static string Chunked(GraphBuilder g, string delta, string deltaU, string bCols, string cRows, string aName,
        int k, int d, int n, int l, int chunk)
    {
        if (chunk <= 0 || l % chunk != 0 || chunk == l) return Sequential(g, delta, deltaU, bCols, cRows, aName, k, d, n);
        int chunks = l / chunk;
        // (B, L, …) → (B, chunks, T, …): the scans run over axis 2 with every chunk in the batch.
        string Split(string x, long a, long b) => g.Reshape(x, -1, chunks, chunk, k, a, b);
        var dl = Split(delta, 1, d);
        var du = Split(deltaU, 1, d);
        var bs = Split(bCols, n, 1);
        var cs = Split(cRows, 1, n);

        // 1. Every chunk from a zero state: only its final state is needed.
        var zeros = Zeros(g, dl, chunks, k, n, d);
        var ends = g.OpN("Scan", [zeros, dl, du, bs], 1,
            Attr.Graph("body", StepBody(g, aName, readOut: false).Graph), Attr.Int("num_scan_inputs", 3),
            Attr.Ints("scan_input_axes", 2, 2, 2))[0];                                     // (B, chunks, K, N, d)

        // 2. Carry across chunk borders: H_{c+1} = exp(A·Σ_{t∈c} δ_t)·H_c + end_c, H_0 = 0; emit H_c.
        var decay = g.Exp(g.Mul(g.ReduceSum(dl, [2], keepDims: false), aName));           // (B, chunks, K, N, d)
        var carry = g.Subgraph("chunk_carry");
        string hIn = carry.Unique("H"), pIn = carry.Unique("chunk_decay"), eIn = carry.Unique("chunk_end");
        foreach (var name in new[] { hIn, pIn, eIn }) carry.Graph.Input.Add(GraphBuilder.ValueInfo(name, null));
        carry.Graph.Output.Add(GraphBuilder.ValueInfo(carry.Add(carry.Mul(pIn, hIn), eIn), null));
        carry.Graph.Output.Add(GraphBuilder.ValueInfo(carry.Op("Identity", [hIn]), null));
        var starts = g.OpN("Scan", [Zeros(g, delta, k, n, d), decay, ends], 2,
            Attr.Graph("body", carry.Graph), Attr.Int("num_scan_inputs", 2),
            Attr.Ints("scan_input_axes", 1, 1), Attr.Ints("scan_output_axes", 1))[1];       // (B, chunks, K, N, d)

        // 3. Every chunk again, from its true initial state, now reading out y.
        var y = g.OpN("Scan", [starts, dl, du, bs, cs], 2,
            Attr.Graph("body", StepBody(g, aName, readOut: true).Graph), Attr.Int("num_scan_inputs", 4),
            Attr.Ints("scan_input_axes", 2, 2, 2, 2), Attr.Ints("scan_output_axes", 2))[1]; // (B, chunks, T, K, 1, d)
        return g.Reshape(y, -1, l, k, 1, d);
    }

    /// <summary>
    /// softplus with PyTorch's threshold (x above 20 passes through, §7.3 step 3) as max(x, log(1 + exp(min(x, 20)))):
    /// ONNX Runtime's Softplus kernel is scalar and took a fifth of the model's time.
    /// </summary>
    private static string Softplus(GraphBuilder g, string x)
    {
        var soft = g.Op("Log", [g.Add(g.Exp(g.Op("Min", [x, g.Scalar(20f)])), g.Scalar(1f))]);
        return g.Op("Max", [x, soft]);
    }

    /// <summary>A zero state (B, dims…) with the batch of <paramref name="like"/> (axis 0).</summary>
    private static string Zeros(GraphBuilder g, string like, params long[] dims)
    {
        var batch = g.Slice(g.Op("Shape", [like]), 0, 0, 1);
        var shape = g.Op("Concat", [batch, g.Ints(dims)], Attr.Int("axis", 0));
        var zero = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float };
        zero.Dims.Add(1);
        zero.FloatData.Add(0f);
        return g.Op("ConstantOfShape", [shape], Attr.Tensor("value", zero));
    }
}
