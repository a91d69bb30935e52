using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// The LSS local branches' depth-wise k×k conv (stride 1, padding k/2, no bias, spec §5) under autograd, with its
/// weight gradient computed here: libtorch's NCHW depth-wise backward spends 10–25 × the forward's time on the
/// weight gradient (an im2col GEMM per channel), which made the local branches' backward a sixth of a training step
/// (docs/performance.md, "Issue 14, phase 6"). The forward and the input gradient stay libtorch's: conv2d, and for dx
/// conv2d of the upstream gradient with the kernel flipped (stride 1, same padding: the transposed conv), which ran in
/// 0.6–0.8 of conv_transpose2d's time. The reference for both gradients is libtorch's autograd (the tests compare).
/// </summary>
internal sealed class DepthwiseConv : torch.autograd.SingleTensorFunction<DepthwiseConv>
{
    public override string Name => "MambaAD.DepthwiseConv";

    /// <summary>
    /// conv2d(x, weight, padding k/2, groups C) for x (B, C, H, W) and weight (C, 1, k, k), k odd ≤ 7; through this
    /// node when a gradient is wanted of float32 CPU tensors, through libtorch's own autograd otherwise.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor weight) => TakesThisNode(x, weight) ? apply(x, weight) : Conv(x, weight);

    internal static bool TakesThisNode(Tensor x, Tensor weight) =>
        is_grad_enabled() && (x.requires_grad || weight.requires_grad) && x.dtype == ScalarType.Float32
        && x.device_type == DeviceType.CPU && weight.shape[2] <= 7;

    private static Tensor Conv(Tensor x, Tensor weight)
    {
        long pad = weight.shape[2] / 2;
        return nn.functional.conv2d(x, weight, null, padding: [pad, pad], groups: weight.shape[0]);
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, weight) = ((Tensor)vars[0], (Tensor)vars[1]);
        ctx.save_for_backward([x, weight]);
        return Conv(x, weight);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (x, weight) = (s[0], s[1]);
        using var scope = NewDisposeScope();
        // g in x's layout: channels-last x (the LSS branches') keeps dx's conv on oneDNN's NHWC kernel.
        var g = TensorMemory.IsChannelsLast(x) ? grad.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) : grad.contiguous();
        long pad = weight.shape[2] / 2;
        var dx = x.requires_grad
            ? nn.functional.conv2d(g, weight.flip(2, 3), null, padding: [pad, pad], groups: weight.shape[0]).MoveToOuterDisposeScope()
            : null;
        var dw = weight.requires_grad ? WeightGrad(x.contiguous(), g.contiguous(), (int)weight.shape[2]).MoveToOuterDisposeScope() : null;
        return [dx!, dw!];
    }

    /// <summary>
    /// dW[c, 0, i, j] = Σ_b Σ_y Σ_x dy[b, c, y, x] · x[b, c, y + i − k/2, x + j − k/2] (zero outside the map), for
    /// contiguous float32 (B, C, H, W) x and dy and odd k ≤ 7. One task per channel, so the sums run in a fixed order:
    /// deterministic. Per kernel row i, the k taps of a row are k vector accumulators that share each dy load.
    /// </summary>
    internal static unsafe Tensor WeightGrad(Tensor x, Tensor dy, int k)
    {
        if (!x.shape.SequenceEqual(dy.shape) || x.dim() != 4 || k % 2 == 0 || k > 7)
            throw new ArgumentException($"depth-wise weight gradient: x and dy of one (B, C, H, W) shape and an odd k ≤ 7, got k = {k}");
        var dw = empty(x.shape[1], 1, k, k);
        // The scan's vector widths (System.Numerics' Vector<T> stays at 8 lanes on AVX-512 hardware).
        switch (ScanKernels.HardwareWidth)
        {
            case 16: WeightGrad<Simd512, Vector512<float>>(x, dy, k, dw); break;
            case 8: WeightGrad<Simd256, Vector256<float>>(x, dy, k, dw); break;
            default: WeightGrad<SimdScalar, float>(x, dy, k, dw); break;
        }
        return dw;
    }

    private static unsafe void WeightGrad<TS, TV>(Tensor x, Tensor dy, int k, Tensor dw) where TS : ISimd<TV> where TV : struct
    {
        int b = (int)x.shape[0], c = (int)x.shape[1], h = (int)x.shape[2], w = (int)x.shape[3];
        // Scratch per channel: its x rows with pad zeros before and enough zeros after for every shifted read (wp),
        // and its dy rows zero-padded to whole vectors (wd).
        int v = TS.Width, wd = (w + v - 1) / v * v, wp = wd + 2 * (k / 2) + v;
        float* px = TensorMemory.Floats(x), pdy = TensorMemory.Floats(dy), pdw = TensorMemory.Floats(dw);
        ScanWorkers.Run(c, (long)b * h * (wp + wd), (ch, scratch) => Channel<TS, TV>(px, pdy, pdw, b, c, h, w, wd, wp, k, ch, scratch));
    }

    /// <summary>One channel: its x and dy planes copied with their zero padding into scratch, then the k kernel rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Channel<TS, TV>(float* px, float* pdy, float* pdw, int b, int c, int h, int w, int wd, int wp, int k,
        int ch, float* scratch) where TS : ISimd<TV> where TV : struct
    {
        int pad = k / 2;
        float* xs = scratch, dys = xs + (long)b * h * wp;
        for (int r = 0; r < b * h; r++)
        {
            long at = ((long)(r / h) * c + ch) * h * w + (long)(r % h) * w;   // row r % h of image r / h, channel ch
            float* row = xs + (long)r * wp, drow = dys + (long)r * wd;
            new Span<float>(row, pad).Clear();
            new ReadOnlySpan<float>(px + at, w).CopyTo(new Span<float>(row + pad, w));
            new Span<float>(row + pad + w, wp - pad - w).Clear();
            new ReadOnlySpan<float>(pdy + at, w).CopyTo(new Span<float>(drow, w));
            new Span<float>(drow + w, wd - w).Clear();
        }
        for (int i = 0; i < k; i++) KernelRow<TS, TV>(xs, dys, b, h, wd, wp, k, i, pdw + ((long)ch * k + i) * k);
    }

    /// <summary>dW[c, 0, i, ·] of one channel from its padded planes: taps j &lt; k of kernel row i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void KernelRow<TS, TV>(float* xs, float* dys, int b, int h, int wd, int wp, int k, int i, float* dwRow)
        where TS : ISimd<TV> where TV : struct
    {
        int v = TS.Width, pad = k / 2;
        TV a0 = TS.Splat(0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0;
        int y0 = Math.Max(0, pad - i), y1 = Math.Min(h, h + pad - i);   // rows whose y + i − pad lies in the map
        for (int n = 0; n < b; n++)
        for (int y = y0; y < y1; y++)
        {
            float* dRow = dys + ((long)n * h + y) * wd, xRow = xs + ((long)n * h + y + i - pad) * wp;
            for (int xo = 0; xo < wd; xo += v)
            {
                // x[y + i − pad, xo + j − pad] sits at xRow[xo + j]; dy past w is zero, so reads past x's end add 0.
                TV d = TS.Load(dRow + xo);
                float* p = xRow + xo;
                a0 = TS.Fma(d, TS.Load(p), a0);
                a1 = TS.Fma(d, TS.Load(p + 1), a1);
                a2 = TS.Fma(d, TS.Load(p + 2), a2);
                if (k == 3) continue;
                a3 = TS.Fma(d, TS.Load(p + 3), a3);
                a4 = TS.Fma(d, TS.Load(p + 4), a4);
                if (k == 5) continue;
                a5 = TS.Fma(d, TS.Load(p + 5), a5);
                a6 = TS.Fma(d, TS.Load(p + 6), a6);
            }
        }
        dwRow[0] = TS.Sum(a0); dwRow[1] = TS.Sum(a1); dwRow[2] = TS.Sum(a2);
        if (k == 3) return;
        dwRow[3] = TS.Sum(a3); dwRow[4] = TS.Sum(a4);
        if (k == 5) return;
        dwRow[5] = TS.Sum(a5); dwRow[6] = TS.Sum(a6);
    }
}
