using System.Runtime.Intrinsics;
using static MambaAD.Util.TensorMemory;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// Tensor-level driver of the projected scan kernels (<see cref="ScanKernels"/>): shapes, contiguity, the step rows
/// in scan order, output allocation and the pointers of <see cref="ScanParams"/>. Layouts are those of
/// <see cref="ISelectiveScan"/>: u, y (Bt, L, d); xDbl (Bt, L, K, R + 2N); dtWeight (K, d, R); paths (K, L).
/// </summary>
internal static unsafe class ProjectedScanOp
{
    /// <summary>
    /// The forward kernel. xDbl is gathered into scan order, one row (Bt, K·L, R + 2N) per step, so each step reads
    /// its [x_r | B | C] contiguously. Returns y and, when <paramref name="saveStates"/>, the chunk-boundary states
    /// and those step rows, which the backward reads again.
    /// </summary>
    public static (Tensor Y, Tensor? H, Tensor? Xs) Forward(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D,
        Tensor bias, Tensor paths, bool saveStates, int w)
    {
        using var scope = NewDisposeScope();
        var (p, p64) = Setup(u, xDbl.shape, dtWeight, A, paths);
        var xs = StepRows(xDbl, p64, w);
        var uc = u.contiguous(); var wc = dtWeight.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var y = empty_like(uc);
        Tensor? h = saveStates ? empty(ScanKernels.ChunkStateLength(p, w), dtype: ScalarType.Float32) : null;
        p.U = Floats(uc); p.XS = Floats(xs); p.Wdt = Floats(wc); p.A = Floats(ac); p.D = Floats(dd);
        p.Bias = Floats(bc); p.Y = Floats(y);
        p.H = h is null ? null : Floats(h); p.Paths = Longs(p64);
        ScanKernels.Forward(p, w);
        GC.KeepAlive(new object[] { uc, xs, wc, ac, dd, bc, p64 });
        h?.MoveToOuterDisposeScope();
        return (y.MoveToOuterDisposeScope(), h, saveStates ? xs.MoveToOuterDisposeScope() : null);
    }

    /// <summary>
    /// The backward kernel from the chunk states and step rows xs of <see cref="Forward"/>: returns (du, dxDbl,
    /// ddtWeight, dA, dD, dbias) in the inputs' layouts (dxDbl (Bt, L, K, R + 2N), pixel order).
    /// </summary>
    public static Tensor[] Backward(Tensor g, Tensor u, Tensor xs, Tensor dtWeight, Tensor A, Tensor D, Tensor bias,
        Tensor paths, Tensor h, int w)
    {
        using var scope = NewDisposeScope();
        long bt = xs.shape[0], k = paths.shape[0], l = xs.shape[1] / k, rs = xs.shape[2], dg = u.shape[2], n = A.shape[1];
        long r = dtWeight.shape[2];
        var (p, p64) = Setup(u, [bt, l, k, rs], dtWeight, A, paths);
        if (ScanKernels.ChunkStateLength(p, w) != h.numel())
            throw new InvalidOperationException("chunk states were saved at another vector width");
        var uc = u.contiguous(); var gc = g.contiguous(); var wc = dtWeight.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var du = empty_like(uc); var dXDbl = empty(bt, l, k, rs);
        var dA = empty(bt, k * dg, n); var dD = empty(bt, k * dg); var dBias = empty(bt, k * dg); var dW = empty(bt, k, dg, r);
        p.U = Floats(uc); p.G = Floats(gc); p.XS = Floats(xs); p.Wdt = Floats(wc); p.A = Floats(ac);
        p.D = Floats(dd); p.Bias = Floats(bc);
        p.H = Floats(h); p.Paths = Longs(p64);
        p.dU = Floats(du); p.dXDbl = Floats(dXDbl); p.dA = Floats(dA); p.dD = Floats(dD); p.dBias = Floats(dBias);
        p.dWdt = Floats(dW);
        p.Whole = ScanBackward.WholeElements(p, w, ScanWorkers.Threads);
        var duK = p.Whole < p.Bt ? empty(ScanBackward.SplitFloats(p, w)) : null;
        p.DUK = duK is null ? null : Floats(duK);
        ScanKernels.Backward(p, w);
        GC.KeepAlive(new object?[] { uc, gc, xs, wc, ac, dd, bc, p64, h, duK });
        var res = new[] { du, dXDbl, dW.sum(0L, false), dA.sum(0L, false), dD.sum(0L, false), dBias.sum(0L, false) };
        foreach (var t in res) t.MoveToOuterDisposeScope();
        return res;
    }

    /// <summary>The sizes of a call for xDbl of shape (Bt, L, K, R + 2N), and the paths as int64.</summary>
    private static (ScanParams P, Tensor P64) Setup(Tensor u, long[] xDblShape, Tensor dtWeight, Tensor A, Tensor paths)
    {
        long bt = xDblShape[0], l = xDblShape[1], k = xDblShape[2];
        var p = new ScanParams
        {
            Bt = (int)bt, K = (int)k, Dg = (int)u.shape[2], N = (int)A.shape[1], L = (int)l, R = (int)dtWeight.shape[2],
            Chunk = ScanKernels.Chunk,
        };
        return (p, paths.to(ScalarType.Int64).contiguous());
    }

    /// <summary>
    /// xDbl's rows in scan order, xs (Bt, K·L, R + 2N): row t of direction k's L rows is xDbl[b, π_k[t], k], one task
    /// per (b, k) on the scan's workers, copied in vectors of width w. libtorch's index_select of the same rows ran on
    /// one thread, ~3 ms/image at batch 8 and 16 (docs/performance.md, phase 29).
    /// </summary>
    private static Tensor StepRows(Tensor xDbl, Tensor paths64, int w)
    {
        long bt = xDbl.shape[0], l = xDbl.shape[1], k = xDbl.shape[2], rs = xDbl.shape[3];
        using var src = xDbl.contiguous();
        var xs = empty(bt, k * l, rs);
        float* from = Floats(src), to = Floats(xs);
        long* paths = Longs(paths64);
        ScanWorkers.Run(checked((int)(bt * k)), 0, (task, _) =>
        {
            long b = task / k, kk = task % k;
            float* s = from + b * l * k * rs + kk * rs, d = to + (b * k + kk) * l * rs;
            long* path = paths + kk * l;
            switch (w)
            {
                case 16: ScanRows.GatherRows<Simd512, Vector512<float>>(s, d, path, (int)l, rs, rs, k * rs); break;
                case 8: ScanRows.GatherRows<Simd256, Vector256<float>>(s, d, path, (int)l, rs, rs, k * rs); break;
                default: ScanRows.GatherRows<SimdScalar, float>(s, d, path, (int)l, rs, rs, k * rs); break;
            }
        });
        return xs;
    }
}
