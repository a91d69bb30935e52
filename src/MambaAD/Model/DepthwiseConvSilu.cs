using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// SS2D's depth-wise 3×3 conv (bias, padding 1) + SiLU (spec §6 step 2) under autograd, with its backward computed
/// here in one channels-last pass per band of rows: it recomputes the pre-activation, and from gp = g·SiLU'(pre) takes
/// dx, dW and dbias together. libtorch's autograd of the same composition (<see cref="Reference"/>: the forward here,
/// inference and the fallback) re-ran the forward under autograd and then the conv's and the SiLU's backward, ~3 × the
/// forward's time. The node saves its inputs only, so no activation outlives the forward (as Recompute did).
/// </summary>
internal sealed class DepthwiseConvSilu : torch.autograd.SingleTensorFunction<DepthwiseConvSilu>
{
    public override string Name => "MambaAD.DepthwiseConvSilu";

    /// <summary>Image rows per backward task: the band recomputes one gp row above and below it (halo).</summary>
    internal const int BandRows = 16;

    /// <summary>Channels per backward task: tasks at the small maps of the deep stages even at batch 1.</summary>
    internal const int GroupChannels = 64;

    /// <summary>
    /// SiLU(conv2d(x, weight, bias, padding 1, groups C)) for x (B, C, H, W), weight (C, 1, 3, 3) and bias (C); through
    /// this node when a gradient is wanted of float32 CPU tensors, through libtorch's own autograd otherwise. x
    /// channels-last in memory (SS2D's) costs no copy.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor bias) =>
        TakesThisNode(x, weight, bias) ? apply(x, weight, bias) : Reference(x, weight, bias);

    internal static bool TakesThisNode(Tensor x, Tensor weight, Tensor bias) =>
        is_grad_enabled() && (x.requires_grad || weight.requires_grad || bias.requires_grad)
        && x.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32 && bias.dtype == ScalarType.Float32
        && x.device_type == DeviceType.CPU && x.dim() == 4
        && weight.shape.SequenceEqual([x.shape[1], 1L, 3L, 3L]) && bias.shape.SequenceEqual([x.shape[1]]);

    /// <summary>The composition in libtorch ops: the forward's values, and the gradients' reference under autograd.</summary>
    public static Tensor Reference(Tensor x, Tensor weight, Tensor bias) =>
        nn.functional.silu(nn.functional.conv2d(x, weight, bias, padding: [1, 1], groups: weight.shape[0]));

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, weight, bias) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        ctx.save_for_backward([x, weight, bias]);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return Reference(x, weight, bias).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (x, weight, bias) = (s[0], s[1], s[2]);
        using var scope = NewDisposeScope();
        var (dx, dw, db) = Gradients(x, weight, bias, grad, x.requires_grad);
        return [x.requires_grad ? dx!.MoveToOuterDisposeScope() : null!,
            weight.requires_grad ? dw.MoveToOuterDisposeScope() : null!,
            bias.requires_grad ? db.MoveToOuterDisposeScope() : null!];
    }

    /// <summary>
    /// The gradients of SiLU(conv2d(x, weight, bias)) for the upstream gradient g, float32, any memory format (the
    /// kernel reads channels-last: SS2D's x and g are, others are copied). dx is null unless <paramref name="inputGrad"/>;
    /// it is (B, C, H, W) in channels-last memory. <paramref name="width"/> forces the vector width (16, 8 or 1) for tests.
    /// </summary>
    internal static unsafe (Tensor? Dx, Tensor Dw, Tensor Db) Gradients(Tensor x, Tensor weight, Tensor bias, Tensor g,
        bool inputGrad = true, int? width = null)
    {
        long[] xs = x.shape;
        if (x.dim() != 4 || !g.shape.SequenceEqual(xs) || !weight.shape.SequenceEqual([xs[1], 1L, 3L, 3L])
            || !bias.shape.SequenceEqual([xs[1]]))
            throw new ArgumentException("depth-wise 3×3 conv + SiLU gradients: x and g (B, C, H, W), weight (C, 1, 3, 3), bias (C)");
        using var scope = NewDisposeScope();
        int b = (int)xs[0], c = (int)xs[1], h = (int)xs[2], w = (int)xs[3];
        var xl = x.permute(0, 2, 3, 1).contiguous();             // (B, H, W, C): a view for channels-last x
        var gl = g.permute(0, 2, 3, 1).contiguous();
        var taps = weight.reshape(c, 9).t().contiguous();         // (9, C): one tap across channels per vector load
        var bs = bias.contiguous();
        var dx = inputGrad ? empty(b, h, w, c) : null;
        int bands = (h + BandRows - 1) / BandRows, groups = (c + GroupChannels - 1) / GroupChannels;
        // Per (image, band): Σ gp·x for each of the 9 taps, then Σ gp, across channels. The decomposition depends on the
        // shape only, and the partials are summed in image and band order below: the same bits at any thread count.
        var partial = empty(b * bands, 10, c);
        var p = new Args
        {
            X = TensorMemory.Floats(xl), G = TensorMemory.Floats(gl), Dx = dx is null ? null : TensorMemory.Floats(dx),
            Taps = TensorMemory.Floats(taps), Bias = TensorMemory.Floats(bs), Partial = TensorMemory.Floats(partial),
            H = h, W = w, C = c,
        };
        int lanes = width ?? ScanKernels.HardwareWidth;
        // Tasks (image, band, channel group); scratch: Block's six padded rows at up to 16 lanes.
        ScanWorkers.Run(b * bands * groups, 6L * (w + 2) * 16, (task, scratch) =>
        {
            int nb = task / groups, c0 = task % groups * GroupChannels, c1 = Math.Min(c, c0 + GroupChannels);
            int y0 = nb % bands * BandRows, y1 = Math.Min(h, y0 + BandRows), n = nb / bands;
            float* part = p.Partial + (long)nb * 10 * c;
            for (int k = 0; k < 10; k++) new Span<float>(part + (long)k * c + c0, c1 - c0).Clear();
            int ch = c0;
            if (lanes == 16) for (; ch + 16 <= c1; ch += 16) Block<Simd512, Vector512<float>>(p, n, y0, y1, ch, part, scratch);
            if (lanes >= 8) for (; ch + 8 <= c1; ch += 8) Block<Simd256, Vector256<float>>(p, n, y0, y1, ch, part, scratch);
            for (; ch < c1; ch++) Block<SimdScalar, float>(p, n, y0, y1, ch, part, scratch);
        });
        var sum = OrderedSum.OverRows(partial);
        GC.KeepAlive(xl); GC.KeepAlive(gl); GC.KeepAlive(taps); GC.KeepAlive(bs);
        var dw = sum.narrow(0, 0, 9).t().reshape(c, 1, 3, 3);
        var db = sum[9].clone();
        return (dx?.permute(0, 3, 1, 2).MoveToOuterDisposeScope(), dw.MoveToOuterDisposeScope(), db.MoveToOuterDisposeScope());
    }

    private unsafe struct Args
    {
        public float* X, G, Dx, Taps, Bias, Partial;   // (B, H, W, C) ×3, (9, C), (C), (B·bands, 10, C)
        public int H, W, C;
    }

    /// <summary>
    /// The rows y0…y1−1 of image n for the channels c…c + lanes − 1 (vector lanes = channels). Three padded rows of x
    /// and three of gp (a zero pixel either side, zero rows outside the map: the conv's zero padding) roll down the
    /// band: gp row r needs x rows r − 1…r + 1, and dx row r − 1 needs gp rows r − 2…r.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block<TS, TV>(in Args p, int n, int y0, int y1, int c, float* partial, float* scratch)
        where TS : ISimd<TV> where TV : struct
    {
        int lanes = TS.Width, w = p.W;
        long row = (long)(w + 2) * lanes;
        float* xs = scratch, gs = scratch + 3 * row;
        for (int k = 0; k < 6; k++)
        {
            new Span<float>(scratch + k * row, lanes).Clear();
            new Span<float>(scratch + k * row + (w + 1) * lanes, lanes).Clear();
        }
        long image = (long)n * p.H * w * p.C + c;   // pixel (0, 0) of image n, channel c, in the (B, H, W, C) tensors
        LoadX(p, xs, row, image, y0 - 2);
        LoadX(p, xs, row, image, y0 - 1);
        for (int r = y0 - 1; r <= y1; r++)
        {
            LoadX(p, xs, row, image, r + 1);
            GpRow<TS, TV>(p, xs, gs, row, image, c, r, r >= y0 && r < y1 ? partial + c : null);
            if (r - 1 >= y0 && p.Dx != null) DxRow<TS, TV>(p, gs, row, image, c, r - 1);
        }

        static void LoadX(in Args p, float* xs, long row, long image, int r)
        {
            int lanes = TS.Width;
            float* slot = xs + Slot(r) * row + lanes;
            if (r < 0 || r >= p.H) { new Span<float>(slot, p.W * lanes).Clear(); return; }
            float* src = p.X + image + (long)r * p.W * p.C;
            for (int px = 0; px < p.W; px++) TS.Store(slot + px * lanes, TS.Load(src + (long)px * p.C));
        }
    }

    /// <summary>The ring slot of image row r ≥ −3.</summary>
    private static long Slot(int r) => (r + 3) % 3;

    /// <summary>
    /// gp = g · SiLU'(pre) for image row r, pre = bias + Σ_taps w·x recomputed (its last bits may differ from oneDNN's
    /// forward, which sums in another order: a float32 rounding of the gradient, within the tests' tolerance); adds the
    /// row's Σ gp·x per tap (dW) and Σ gp (dbias) to <paramref name="sums"/> when it is not null (rows of the band; the
    /// halo rows only feed dx).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void GpRow<TS, TV>(in Args p, float* xs, float* gs, long row, long image, int c, int r, float* sums)
        where TS : ISimd<TV> where TV : struct
    {
        int lanes = TS.Width, w = p.W, C = p.C;
        float* go = gs + Slot(r) * row + lanes;
        if (r < 0 || r >= p.H) { new Span<float>(go, w * lanes).Clear(); return; }
        // Padded rows: the pixel px − 1 (tap column j = 0) of pixel px sits at px·lanes.
        float* xu = xs + Slot(r - 1) * row, xm = xs + Slot(r) * row, xd = xs + Slot(r + 1) * row;
        float* t = p.Taps + c;
        TV w0 = TS.Load(t), w1 = TS.Load(t + C), w2 = TS.Load(t + 2 * C), w3 = TS.Load(t + 3 * C), w4 = TS.Load(t + 4 * C),
            w5 = TS.Load(t + 5 * C), w6 = TS.Load(t + 6 * C), w7 = TS.Load(t + 7 * C), w8 = TS.Load(t + 8 * C);
        TV bias = TS.Load(p.Bias + c), one = TS.Splat(1f), minusOne = TS.Splat(-1f);
        TV a0 = TS.Splat(0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, ab = a0;
        float* gRow = p.G + image + (long)r * w * C;
        for (int px = 0; px < w; px++)
        {
            long o = (long)px * lanes;
            TV u0 = TS.Load(xu + o), u1 = TS.Load(xu + o + lanes), u2 = TS.Load(xu + o + 2 * lanes);
            TV m0 = TS.Load(xm + o), m1 = TS.Load(xm + o + lanes), m2 = TS.Load(xm + o + 2 * lanes);
            TV d0 = TS.Load(xd + o), d1 = TS.Load(xd + o + lanes), d2 = TS.Load(xd + o + 2 * lanes);
            TV pre = TS.Fma(w0, u0, bias);
            pre = TS.Fma(w1, u1, pre); pre = TS.Fma(w2, u2, pre);
            pre = TS.Fma(w3, m0, pre); pre = TS.Fma(w4, m1, pre); pre = TS.Fma(w5, m2, pre);
            pre = TS.Fma(w6, d0, pre); pre = TS.Fma(w7, d1, pre); pre = TS.Fma(w8, d2, pre);
            // SiLU'(p) = σ(p)·(1 + p·(1 − σ(p))); σ is softplus' (the SSM's vector sigmoid; its 1 above 20 is float32's σ).
            TV s = TS.SoftplusGrad(pre);
            TV gp = TS.Mul(TS.Mul(TS.Load(gRow + (long)px * C), s), TS.Fma(pre, TS.Fma(s, minusOne, one), one));
            TS.Store(go + o, gp);
            a0 = TS.Fma(gp, u0, a0); a1 = TS.Fma(gp, u1, a1); a2 = TS.Fma(gp, u2, a2);
            a3 = TS.Fma(gp, m0, a3); a4 = TS.Fma(gp, m1, a4); a5 = TS.Fma(gp, m2, a5);
            a6 = TS.Fma(gp, d0, a6); a7 = TS.Fma(gp, d1, a7); a8 = TS.Fma(gp, d2, a8);
            ab = TS.Add(ab, gp);
        }
        if (sums is null) return;
        // dW[c, i, j] = Σ_pixels gp·x[y + i − 1, x + j − 1]; dbias = Σ gp.
        Accumulate(sums, a0); Accumulate(sums + C, a1); Accumulate(sums + 2 * C, a2);
        Accumulate(sums + 3 * C, a3); Accumulate(sums + 4 * C, a4); Accumulate(sums + 5 * C, a5);
        Accumulate(sums + 6 * C, a6); Accumulate(sums + 7 * C, a7); Accumulate(sums + 8 * C, a8);
        Accumulate(sums + 9 * C, ab);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Accumulate(float* at, TV v) => TS.Store(at, TS.Add(TS.Load(at), v));
    }

    /// <summary>
    /// dx row t = the transposed conv of gp: dx[t, x] = Σ_{i,j} w[i, j]·gp[t − i + 1, x − j + 1] (the kernel flipped),
    /// gp rows t − 1…t + 1 from the ring (zero outside the map).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void DxRow<TS, TV>(in Args p, float* gs, long row, long image, int c, int t)
        where TS : ISimd<TV> where TV : struct
    {
        int lanes = TS.Width, w = p.W, C = p.C;
        float* gu = gs + Slot(t - 1) * row, gm = gs + Slot(t) * row, gd = gs + Slot(t + 1) * row;
        float* k = p.Taps + c;
        TV w0 = TS.Load(k), w1 = TS.Load(k + C), w2 = TS.Load(k + 2 * C), w3 = TS.Load(k + 3 * C), w4 = TS.Load(k + 4 * C),
            w5 = TS.Load(k + 5 * C), w6 = TS.Load(k + 6 * C), w7 = TS.Load(k + 7 * C), w8 = TS.Load(k + 8 * C);
        float* dRow = p.Dx + image + (long)t * w * C;
        for (int px = 0; px < w; px++)
        {
            // Padded rows: gp[·, x − 1] at px·lanes, gp[·, x] one pixel on, gp[·, x + 1] two.
            long o = (long)px * lanes;
            TV s = TS.Mul(w0, TS.Load(gd + o + 2 * lanes));
            s = TS.Fma(w1, TS.Load(gd + o + lanes), s); s = TS.Fma(w2, TS.Load(gd + o), s);
            s = TS.Fma(w3, TS.Load(gm + o + 2 * lanes), s); s = TS.Fma(w4, TS.Load(gm + o + lanes), s);
            s = TS.Fma(w5, TS.Load(gm + o), s);
            s = TS.Fma(w6, TS.Load(gu + o + 2 * lanes), s); s = TS.Fma(w7, TS.Load(gu + o + lanes), s);
            s = TS.Fma(w8, TS.Load(gu + o), s);
            TS.Store(dRow + (long)px * C, s);
        }
    }
}
