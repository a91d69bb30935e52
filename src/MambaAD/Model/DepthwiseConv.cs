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
/// (docs/performance.md, "Issue 14, phase 6"). The kernel reads x and dy channels-last, as the branches hold them, with
/// the channels as vector lanes (an NCHW kernel needed both copied first: twice its own time; phase 20). The forward
/// and the input gradient stay libtorch's: conv2d, and for dx conv2d of the upstream gradient with the kernel flipped
/// (stride 1, same padding: the transposed conv), which ran in 0.6–0.8 of conv_transpose2d's time. The reference for
/// both gradients is libtorch's autograd (the tests compare).
/// </summary>
internal sealed class DepthwiseConv : torch.autograd.SingleTensorFunction<DepthwiseConv>
{
    public override string Name => "MambaAD.DepthwiseConv";

    /// <summary>
    /// conv2d(x, weight, padding k/2, groups C) for x (B, C, H, W) and weight (C, 1, k, k), k = 3, 5 or 7; through this
    /// node when a gradient is wanted of float32 CPU tensors, through libtorch's own autograd otherwise.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor weight) => TakesThisNode(x, weight) ? apply(x, weight) : Conv(x, weight);

    internal static bool TakesThisNode(Tensor x, Tensor weight) =>
        is_grad_enabled() && (x.requires_grad || weight.requires_grad) && x.dtype == ScalarType.Float32
        && x.device_type == DeviceType.CPU && x.dim() == 4
        && weight.shape.SequenceEqual([x.shape[1], 1L, weight.shape[2], weight.shape[2]]) && IsOddUpTo7(weight.shape[2]);

    private static bool IsOddUpTo7(long k) => k is 3 or 5 or 7;

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
        var g = TensorMemory.IsChannelsLast(x) ? TensorMemory.ChannelsLast(grad) : grad.contiguous();
        long pad = weight.shape[2] / 2;
        var dx = x.requires_grad
            ? nn.functional.conv2d(g, weight.flip(2, 3), null, padding: [pad, pad], groups: weight.shape[0]).MoveToOuterDisposeScope()
            : null;
        var dw = weight.requires_grad ? WeightGrad(x, g, (int)weight.shape[2]).MoveToOuterDisposeScope() : null;
        return [dx!, dw!];
    }

    /// <summary>Image rows per weight-gradient task.</summary>
    internal const int BandRows = 16;

    /// <summary>Channels per weight-gradient task: tasks at the deep stages' small maps even at batch 1.</summary>
    internal const int GroupChannels = 64;

    /// <summary>
    /// dW[c, 0, i, j] = Σ_b Σ_y Σ_x dy[b, c, y, x] · x[b, c, y + i − k/2, x + j − k/2] (zero outside the map), for
    /// float32 (B, C, H, W) x and dy in any memory format (read channels-last, the LSS branches' layout: no copy there)
    /// and k = 3, 5 or 7. Vector lanes are channels. Tasks are (image, band of rows, channel group); each writes its own
    /// partial sums, added in image and band order: the same bits at any thread count. <paramref name="width"/> forces
    /// the vector width (16, 8 or 1) for tests.
    /// </summary>
    internal static unsafe Tensor WeightGrad(Tensor x, Tensor dy, int k, int? width = null)
    {
        if (!x.shape.SequenceEqual(dy.shape) || x.dim() != 4 || !IsOddUpTo7(k))
            throw new ArgumentException($"depth-wise weight gradient: x and dy of one (B, C, H, W) shape and k = 3, 5 or 7, got k = {k}");
        using var scope = NewDisposeScope();
        int b = (int)x.shape[0], c = (int)x.shape[1], h = (int)x.shape[2], w = (int)x.shape[3], pad = k / 2;
        var xl = x.permute(0, 2, 3, 1).contiguous();    // (B, H, W, C): a view for channels-last x
        var gl = dy.permute(0, 2, 3, 1).contiguous();
        int bands = (h + BandRows - 1) / BandRows, groups = (c + GroupChannels - 1) / GroupChannels;
        var partial = empty(b * bands, k * k, c);
        var p = new Args
        {
            X = TensorMemory.Floats(xl), G = TensorMemory.Floats(gl), Partial = TensorMemory.Floats(partial),
            H = h, W = w, C = c, K = k,
        };
        int lanes = width ?? ScanKernels.HardwareWidth;
        // Scratch: the band's x rows and k − 1 halo rows, each with k/2 zero pixels either side, at up to 16 lanes.
        ScanWorkers.Run(b * bands * groups, (long)(BandRows + 2 * pad) * (w + 2 * pad) * 16, (task, scratch) =>
        {
            int nb = task / groups, c0 = task % groups * GroupChannels, c1 = Math.Min(c, c0 + GroupChannels);
            int y0 = nb % bands * BandRows, y1 = Math.Min(h, y0 + BandRows), n = nb / bands;
            float* part = p.Partial + (long)nb * k * k * c;
            int ch = c0;
            if (lanes == 16) for (; ch + 16 <= c1; ch += 16) Block<Simd512, Vector512<float>>(p, n, y0, y1, ch, part, scratch);
            if (lanes >= 8) for (; ch + 8 <= c1; ch += 8) Block<Simd256, Vector256<float>>(p, n, y0, y1, ch, part, scratch);
            for (; ch < c1; ch++) Block<SimdScalar, float>(p, n, y0, y1, ch, part, scratch);
        });
        var dw = OrderedSum.OverRows(partial).t().reshape(c, 1, k, k);
        GC.KeepAlive(xl); GC.KeepAlive(gl);
        return dw.MoveToOuterDisposeScope();
    }

    private unsafe struct Args
    {
        public float* X, G, Partial;   // (B, H, W, C) ×2, (B·bands, k·k, C)
        public int H, W, C, K;
    }

    /// <summary>
    /// The rows y0…y1−1 of image n for the channels c…c + lanes − 1: the x rows y0 − k/2 … y1 − 1 + k/2 copied with
    /// their zero padding (zero rows outside the map), then per kernel row i the k taps as k vector accumulators
    /// sharing each dy load; the task's sums go to its own partial rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Block<TS, TV>(in Args p, int n, int y0, int y1, int c, float* partial, float* scratch)
        where TS : ISimd<TV> where TV : struct
    {
        int lanes = TS.Width, w = p.W, C = p.C, k = p.K, pad = k / 2;
        long row = (long)(w + 2 * pad) * lanes;
        long image = (long)n * p.H * w * C + c;   // pixel (0, 0) of image n, channel c, in the (B, H, W, C) tensors
        for (int r = y0 - pad; r < y1 + pad; r++)
        {
            float* slot = scratch + (r - y0 + pad) * row;
            if (r < 0 || r >= p.H) { new Span<float>(slot, (int)row).Clear(); continue; }
            new Span<float>(slot, pad * lanes).Clear();
            new Span<float>(slot + (pad + w) * lanes, pad * lanes).Clear();
            float* src = p.X + image + (long)r * w * C;
            for (int px = 0; px < w; px++) TS.Store(slot + (px + pad) * lanes, TS.Load(src + (long)px * C));
        }
        for (int i = 0; i < k; i++)
        {
            TV a0 = TS.Splat(0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0;
            for (int y = y0; y < y1; y++)
            {
                // x[y + i − pad, px + j − pad] sits at xRow[(px + j)·lanes]: the slot of row y + i − pad.
                float* xRow = scratch + (y - y0 + i) * row, gRow = p.G + image + (long)y * w * C;
                for (int px = 0; px < w; px++)
                {
                    TV d = TS.Load(gRow + (long)px * C);
                    float* q = xRow + px * lanes;
                    a0 = TS.Fma(d, TS.Load(q), a0);
                    a1 = TS.Fma(d, TS.Load(q + lanes), a1);
                    a2 = TS.Fma(d, TS.Load(q + 2 * lanes), a2);
                    if (k == 3) continue;
                    a3 = TS.Fma(d, TS.Load(q + 3 * lanes), a3);
                    a4 = TS.Fma(d, TS.Load(q + 4 * lanes), a4);
                    if (k == 5) continue;
                    a5 = TS.Fma(d, TS.Load(q + 5 * lanes), a5);
                    a6 = TS.Fma(d, TS.Load(q + 6 * lanes), a6);
                }
            }
            float* taps = partial + (long)i * k * C + c;   // partial rows i·k + j, channel c
            TS.Store(taps, a0); TS.Store(taps + C, a1); TS.Store(taps + 2 * C, a2);
            if (k == 3) continue;
            TS.Store(taps + 3 * C, a3); TS.Store(taps + 4 * C, a4);
            if (k == 5) continue;
            TS.Store(taps + 5 * C, a5); TS.Store(taps + 6 * C, a6);
        }
    }
}
