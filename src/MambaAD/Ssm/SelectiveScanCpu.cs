using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The selective scan on CPU through the C# SIMD kernels of <see cref="ScanKernels"/> (forward and backward, with
/// chunk-boundary states and recompute), as a torch autograd function. Differentiable in u, delta, A, B, C, D and
/// deltaBias. Inputs it does not take (not float32, not CPU) go to <see cref="SelectiveScanReference"/>, as llm.c's
/// matmul falls back to the naive one.
/// </summary>
public sealed class SelectiveScanCpu : ISelectiveScan
{
    /// <summary>The kernel at the widest vector width the hardware accelerates.</summary>
    public static readonly SelectiveScanCpu Instance = new(null);

    private readonly int? _width;

    /// <param name="width">16, 8 or 1 (scalar) to force a kernel width (tests, benchmarks); null for the hardware's best.</param>
    internal SelectiveScanCpu(int? width)
    {
        if (width is not (null or 16 or 8 or 1)) throw new ArgumentException($"width must be 16, 8 or 1, got {width}");
        _width = width;
    }

    /// <summary>The vector width this instance runs at.</summary>
    internal int Width => _width ?? ScanKernels.HardwareWidth;

    /// <summary>True when the kernel takes these tensors: float32 on the CPU (any strides; it makes them contiguous).</summary>
    public static bool Handles(params Tensor[] ts) =>
        ts.All(t => t.dtype == ScalarType.Float32 && t.device_type == DeviceType.CPU);

    public Tensor Scan(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, bool deltaSoftplus = true)
    {
        ScanShapes.Check(u, delta, A, B, C, D, deltaBias);
        if (!Handles(u, delta, A, B, C, D, deltaBias))
            return SelectiveScanReference.Instance.Scan(u, delta, A, B, C, D, deltaBias, deltaSoftplus);
        return Run(u, delta, A, B, C, D, deltaBias, null, deltaSoftplus, Width);
    }

    public Tensor ScanAndMerge(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckMerge(u, delta, A, B, C, D, deltaBias, paths);
        if (!Handles(u, delta, A, B, C, D, deltaBias) || paths.device_type != DeviceType.CPU)
            return SelectiveScanReference.Instance.ScanAndMerge(u, delta, A, B, C, D, deltaBias, paths);
        using var p64 = paths.to(ScalarType.Int64).contiguous();
        return Run(u, delta, A, B, C, D, deltaBias, p64, deltaSoftplus: true, Width);
    }

    /// <summary>
    /// The SS2D core with the Δ projection inside the kernel: forward and backward compute δ from x_r per step and
    /// never materialise the (Bt, K, d, L) delta; the autograd node keeps xDbl (R + 2N rows) instead of delta (d rows).
    /// </summary>
    public Tensor ScanAndMergeProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckProjected(u, xDbl, dtWeight, A, D, deltaBias, paths);
        if (!Handles(u, xDbl, dtWeight, A, D, deltaBias) || paths.device_type != DeviceType.CPU)
            return ((ISelectiveScan)SelectiveScanReference.Instance).ScanAndMergeProjected(u, xDbl, dtWeight, A, D, deltaBias, paths);
        bool grad = is_grad_enabled() && new[] { u, xDbl, dtWeight, A, D, deltaBias }.Any(t => t.requires_grad);
        if (grad) return ProjectedScanFunction.apply(u, xDbl, dtWeight, A, D, deltaBias, paths, Width);
        using var scope = NewDisposeScope();
        var y = ScanOp.ForwardProjected(u, xDbl, dtWeight, A, D, deltaBias, paths, saveStates: false, Width).y;
        return y.MoveToOuterDisposeScope();
    }

    private static Tensor Run(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor bias, Tensor? paths, bool deltaSoftplus, int width)
    {
        bool grad = is_grad_enabled() && new[] { u, delta, A, B, C, D, bias }.Any(t => t.requires_grad);
        if (grad) return ScanFunction.apply(u, delta, A, B, C, D, bias, paths, deltaSoftplus, width);
        using var scope = NewDisposeScope();
        var y = ScanOp.Forward(u, delta, A, B, C, D, bias, paths, deltaSoftplus, saveStates: false, width).y;
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>Tensor-level driver of the kernels: contiguity, transposes of B/C, output allocation, pointers.</summary>
internal static unsafe class ScanOp
{
    /// <summary>Runs the forward kernel. Returns y and, when <paramref name="saveStates"/>, the chunk-boundary states.</summary>
    public static (Tensor y, Tensor? h, int width) Forward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor bias,
        Tensor? paths, bool deltaSoftplus, bool saveStates, int w)
    {
        using var scope = NewDisposeScope();
        var p = Shape(u, B, A, paths, deltaSoftplus);
        var uc = u.contiguous(); var dc = delta.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var bt = B.transpose(2, 3).contiguous(); var ct = C.transpose(2, 3).contiguous();   // (Bt, K, L, N)
        var y = empty_like(uc);
        Tensor? h = saveStates ? empty(ScanKernels.ChunkStateLength(p, w), dtype: ScalarType.Float32) : null;
        p.U = Ptr(uc); p.Delta = Ptr(dc); p.A = Ptr(ac); p.BT = Ptr(bt); p.CT = Ptr(ct); p.D = Ptr(dd); p.Bias = Ptr(bc);
        p.Y = Ptr(y); p.H = h is null ? null : Ptr(h); p.Paths = paths is null ? null : PtrLong(paths);
        ScanKernels.Forward(p, w);
        GC.KeepAlive(new object[] { uc, dc, ac, dd, bc, bt, ct });
        h?.MoveToOuterDisposeScope();
        return (y.MoveToOuterDisposeScope(), h, w);
    }

    /// <summary>
    /// Projected ScanAndMerge forward, channels-last: u, y (Bt, L, d); xDbl (Bt, L, K, R + 2N) is gathered into scan
    /// order, one row (Bt, K, L, R + 2N) per step, so each step reads its [x_r | B | C] contiguously; δ is projected
    /// inside the kernel.
    /// </summary>
    public static (Tensor y, Tensor? h) ForwardProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor bias,
        Tensor paths, bool saveStates, int w)
    {
        using var scope = NewDisposeScope();
        var (p, p64, _, xs) = Projected(u, xDbl, dtWeight, A, paths);
        var uc = u.contiguous(); var wc = dtWeight.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var y = empty_like(uc);
        Tensor? h = saveStates ? empty(ScanKernels.ChunkStateLength(p, w), dtype: ScalarType.Float32) : null;
        p.U = Ptr(uc); p.XS = Ptr(xs); p.Wdt = Ptr(wc); p.A = Ptr(ac); p.D = Ptr(dd); p.Bias = Ptr(bc); p.Y = Ptr(y);
        p.H = h is null ? null : Ptr(h); p.Paths = PtrLong(p64);
        ScanKernels.Forward(p, w);
        GC.KeepAlive(new object[] { uc, xs, wc, ac, dd, bc, p64 });
        h?.MoveToOuterDisposeScope();
        return (y.MoveToOuterDisposeScope(), h);
    }

    /// <summary>
    /// The shape of a projected call, int64 paths, and its step rows: row π_k[t]·K + k of the (Bt, L·K, R + 2N) view of
    /// xDbl is step t of direction k, so index_select by <c>rows</c> gives xs (Bt, K·L, R + 2N) in scan order.
    /// </summary>
    private static (ScanParams P, Tensor P64, Tensor Rows, Tensor Xs) Projected(Tensor u, Tensor xDbl, Tensor dtWeight,
        Tensor A, Tensor paths)
    {
        long bt = xDbl.shape[0], l = xDbl.shape[1], k = xDbl.shape[2], rs = xDbl.shape[3];
        var p = new ScanParams
        {
            Bt = (int)bt, K = (int)k, Dg = (int)u.shape[2], N = (int)A.shape[1], L = (int)l, R = (int)dtWeight.shape[2],
            Chunk = ScanKernels.DefaultChunk, SharedU = true, DeltaSoftplus = true,
        };
        var p64 = paths.to(ScalarType.Int64).contiguous();
        var rows = (p64 * k + arange(k, dtype: ScalarType.Int64).unsqueeze(1)).reshape(-1);
        return (p, p64, rows, xDbl.reshape(bt, l * k, rs).index_select(1, rows));
    }

    /// <summary>
    /// Backward of <see cref="ForwardProjected"/> from its chunk states: returns (du, dxDbl, ddtWeight, dA, dD, dbias)
    /// in the inputs' layouts. The step rows are gathered again (cheap) rather than kept from the forward.
    /// </summary>
    public static Tensor[] BackwardProjected(Tensor g, Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor bias,
        Tensor paths, Tensor h, int w)
    {
        using var scope = NewDisposeScope();
        long bt = xDbl.shape[0], l = xDbl.shape[1], k = xDbl.shape[2], rs = xDbl.shape[3], dg = u.shape[2], n = A.shape[1];
        long r = dtWeight.shape[2];
        var (p, p64, rows, xs) = Projected(u, xDbl, dtWeight, A, paths);
        if (ScanKernels.ChunkStateLength(p, w) != h.numel())
            throw new InvalidOperationException("chunk states were saved at another vector width");
        var uc = u.contiguous(); var gc = g.contiguous(); var wc = dtWeight.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var du = empty_like(uc); var dxs = empty_like(xs);
        var dA = empty(bt, k * dg, n); var dD = empty(bt, k * dg); var dBias = empty(bt, k * dg); var dW = empty(bt, k, dg, r);
        p.U = Ptr(uc); p.G = Ptr(gc); p.XS = Ptr(xs); p.Wdt = Ptr(wc); p.A = Ptr(ac); p.D = Ptr(dd); p.Bias = Ptr(bc);
        p.H = Ptr(h); p.Paths = PtrLong(p64);
        p.dU = Ptr(du); p.dXS = Ptr(dxs); p.dA = Ptr(dA); p.dD = Ptr(dD); p.dBias = Ptr(dBias); p.dWdt = Ptr(dW);
        ScanKernels.BackwardProjected(p, w);
        GC.KeepAlive(new object[] { uc, gc, xs, wc, ac, dd, bc, p64, h });
        // Scan-order d rows back to pixel rows: rows is a permutation of 0…K·L−1, so scatter by it.
        var dXDbl = empty(bt, l * k, rs).index_copy_(1, rows, dxs).view(bt, l, k, rs);
        var res = new[] { du, dXDbl, dW.sum(0L, false), dA.sum(0L, false), dD.sum(0L, false), dBias.sum(0L, false) };
        foreach (var t in res) t.MoveToOuterDisposeScope();
        return res;
    }

    /// <summary>Plain Scan forward with the SIMD-over-states variant (benchmark comparison only).</summary>
    public static Tensor ForwardOverStates(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor bias)
    {
        using var scope = NewDisposeScope();
        var p = Shape(u, B, A, null, deltaSoftplus: true);
        var uc = u.contiguous(); var dc = delta.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var bt = B.transpose(2, 3).contiguous(); var ct = C.transpose(2, 3).contiguous();
        var y = empty_like(uc);
        p.U = Ptr(uc); p.Delta = Ptr(dc); p.A = Ptr(ac); p.BT = Ptr(bt); p.CT = Ptr(ct); p.D = Ptr(dd); p.Bias = Ptr(bc);
        p.Y = Ptr(y);
        ScanKernels.ForwardOverStates(p);
        GC.KeepAlive(new object[] { uc, dc, ac, dd, bc, bt, ct });
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Runs the backward kernel from the saved states; returns (du, ddelta, dA, dB, dC, dD, dbias).</summary>
    public static Tensor[] Backward(Tensor g, Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor bias,
        Tensor? paths, bool deltaSoftplus, Tensor h, int width)
    {
        using var scope = NewDisposeScope();
        var p = Shape(u, B, A, paths, deltaSoftplus);
        if (ScanKernels.ChunkStateLength(p, width) != h.numel())
            throw new InvalidOperationException("chunk states were saved at another vector width");
        var uc = u.contiguous(); var dc = delta.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous(); var gc = g.contiguous();
        var bt = B.transpose(2, 3).contiguous(); var ct = C.transpose(2, 3).contiguous();
        var du = empty_like(uc); var ddelta = empty_like(dc);
        var dbt = empty_like(bt); var dct = empty_like(ct);
        var dA = empty(p.Bt, (long)p.K * p.Dg, p.N); var dD = empty(p.Bt, (long)p.K * p.Dg); var dBias = empty(p.Bt, (long)p.K * p.Dg);
        p.U = Ptr(uc); p.Delta = Ptr(dc); p.A = Ptr(ac); p.BT = Ptr(bt); p.CT = Ptr(ct); p.D = Ptr(dd); p.Bias = Ptr(bc);
        p.H = Ptr(h); p.Paths = paths is null ? null : PtrLong(paths);
        p.G = Ptr(gc); p.dU = Ptr(du); p.dDelta = Ptr(ddelta); p.dA = Ptr(dA); p.dBT = Ptr(dbt); p.dCT = Ptr(dct);
        p.dD = Ptr(dD); p.dBias = Ptr(dBias);
        ScanKernels.Backward(p, width);
        var res = new[]
        {
            du, ddelta, dA.sum(0L, false), dbt.transpose(2, 3).contiguous(), dct.transpose(2, 3).contiguous(), dD.sum(0L, false), dBias.sum(0L, false),
        };
        GC.KeepAlive(new object[] { uc, dc, ac, dd, bc, bt, ct, gc });
        foreach (var t in res) t.MoveToOuterDisposeScope();
        return res;
    }

    private static ScanParams Shape(Tensor u, Tensor B, Tensor A, Tensor? paths, bool deltaSoftplus)
    {
        bool shared = paths is not null;
        int k = (int)B.shape[1];
        return new ScanParams
        {
            Bt = (int)u.shape[0], K = k, Dg = (int)(shared ? u.shape[1] : u.shape[1] / k), N = (int)A.shape[1],
            L = (int)u.shape[2], Chunk = ScanKernels.DefaultChunk, SharedU = shared, DeltaSoftplus = deltaSoftplus,
        };
    }

    // storage<T>() must name the tensor's own element type (another T converts into a temporary copy).
    private static float* Ptr(Tensor t) =>
        t.dtype == ScalarType.Float32 && t.is_contiguous()
            ? (float*)t.storage<float>().data_ptr() + t.storage_offset()
            : throw new InvalidOperationException($"kernel needs contiguous float32, got {t.dtype}");

    private static long* PtrLong(Tensor t) =>
        t.dtype == ScalarType.Int64 && t.is_contiguous()
            ? (long*)t.storage<long>().data_ptr() + t.storage_offset()
            : throw new InvalidOperationException($"kernel needs contiguous int64 paths, got {t.dtype}");
}

/// <summary>The autograd node: forward keeps inputs and chunk states; backward runs the backward kernel.</summary>
internal sealed class ScanFunction : torch.autograd.SingleTensorFunction<ScanFunction>
{
    public override string Name => "MambaAD.SelectiveScanCpu";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, delta, A, B, C, D, bias) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3],
            (Tensor)vars[4], (Tensor)vars[5], (Tensor)vars[6]);
        var paths = vars[7] as Tensor;
        bool softplus = (bool)vars[8];
        int width = (int)vars[9];
        var (y, h, _) = ScanOp.Forward(u, delta, A, B, C, D, bias, paths, softplus, saveStates: true, width);
        ctx.save_for_backward([u, delta, A, B, C, D, bias, h!, paths ?? empty(0, dtype: ScalarType.Int64)]);
        ctx.save_data("softplus", softplus);
        ctx.save_data("paths", paths is not null);
        ctx.save_data("width", width);
        return y;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        bool hasPaths = (bool)ctx.get_data("paths");
        var g = ScanOp.Backward(grad, s[0], s[1], s[2], s[3], s[4], s[5], s[6], hasPaths ? s[8] : null,
            (bool)ctx.get_data("softplus"), s[7], (int)ctx.get_data("width"));
        return [.. g, null!, null!, null!];
    }
}

/// <summary>
/// The autograd node of the projected op: keeps u, xDbl, dtWeight and the chunk states (not delta); its backward
/// kernel recomputes δ from xDbl per chunk and returns the gradients of x_r and dtWeight itself.
/// </summary>
internal sealed class ProjectedScanFunction : torch.autograd.SingleTensorFunction<ProjectedScanFunction>
{
    public override string Name => "MambaAD.SelectiveScanCpuProjected";

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, xDbl, dtW, A, D, bias, paths) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3],
            (Tensor)vars[4], (Tensor)vars[5], (Tensor)vars[6]);
        int width = (int)vars[7];
        var (y, h) = ScanOp.ForwardProjected(u, xDbl, dtW, A, D, bias, paths, saveStates: true, width);
        ctx.save_for_backward([u, xDbl, dtW, A, D, bias, h!, paths]);
        ctx.save_data("width", width);
        return y;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (u, xDbl, dtW, A, D, bias, h, paths) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        var res = ScanOp.BackwardProjected(grad, u, xDbl, dtW, A, D, bias, paths, h, (int)ctx.get_data("width"));
        return [.. res, null!, null!];
    }
}
