using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// SiLU(InstanceNorm(x)) without affine parameters (spec §5, the LSS local branches' IN → SiLU), for channels-last
/// data in inference: per (image, channel), mean and biased variance over the H·W pixels, then y = z·sigmoid(z) with
/// z = (x − mean)/√(var + eps). Three passes over each image (mean, variance around it, normalise + SiLU) vectorised
/// over channels, instead of torch's instance norm (a batch norm over a reshaped copy) and a separate SiLU pass.
/// <see cref="Reference"/> is the same function in torch ops, for training and for tensors the kernel does not take.
/// </summary>
internal static unsafe class InstanceNormSilu
{
    /// <summary>x (B, C, H, W), any memory format; returns (B, C, H, W) in channels-last memory.</summary>
    public static Tensor Forward(Tensor x, double eps, int? width = null)
    {
        if (x.dtype != ScalarType.Float32 || x.device_type != DeviceType.CPU || x.dim() != 4 || x.requires_grad && is_grad_enabled())
            return Reference(x, eps);
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3];
        var xl = x.permute(0, 2, 3, 1).contiguous();               // (B, H, W, C): a view when x is channels-last
        var y = empty_like(xl);
        float* src = TensorMemory.Floats(xl), dst = TensorMemory.Floats(y);
        var p = new Args { X = src, Y = dst, C = (int)c, HW = (int)hw, Eps = (float)eps };
        int w = width ?? ScanKernels.HardwareWidth;
        ScanWorkers.Run((int)b, 2L * c, (i, buf) =>
        {
            switch (w)
            {
                case 16: Image<Simd512, Vector512<float>>(p, i, buf); break;
                case 8: Image<Simd256, Vector256<float>>(p, i, buf); break;
                default: Image<SimdScalar, float>(p, i, buf); break;
            }
        });
        GC.KeepAlive(xl);
        return y.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>The same function in torch ops (what the LSS Sequential computes).</summary>
    public static Tensor Reference(Tensor x, double eps) =>
        nn.functional.silu(nn.functional.instance_norm(x, eps: eps));

    private struct Args
    {
        public float* X, Y;
        public int C, HW;
        public float Eps;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Image<TS, TV>(in Args p, int b, float* scratch) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, c = p.C, n = p.HW, cv = c - c % w;
        float* x = p.X + (long)b * n * c, y = p.Y + (long)b * n * c, mean = scratch, rstd = scratch + c;
        new Span<float>(scratch, 2 * c).Clear();
        // Pass 1: Σ x per channel (vector lanes = channels; the tail channels one by one).
        for (int t = 0; t < n; t++)
        {
            float* row = x + (long)t * c;
            int j = 0;
            for (; j < cv; j += w) TS.Store(mean + j, TS.Add(TS.Load(mean + j), TS.Load(row + j)));
            for (; j < c; j++) mean[j] += row[j];
        }
        float invN = 1f / n;
        for (int j = 0; j < c; j++) mean[j] *= invN;
        // Pass 2: Σ (x − mean)², around the mean (no cancellation of Σx² − n·mean²).
        for (int t = 0; t < n; t++)
        {
            float* row = x + (long)t * c;
            int j = 0;
            for (; j < cv; j += w)
            {
                TV d = TS.Add(TS.Load(row + j), TS.Mul(TS.Load(mean + j), TS.Splat(-1f)));
                TS.Store(rstd + j, TS.Fma(d, d, TS.Load(rstd + j)));
            }
            for (; j < c; j++) { float d = row[j] - mean[j]; rstd[j] += d * d; }
        }
        for (int j = 0; j < c; j++) rstd[j] = 1f / MathF.Sqrt(rstd[j] * invN + p.Eps);
        // Pass 3: z = (x − mean)·rstd, y = z·sigmoid(z) (sigmoid = softplus').
        for (int t = 0; t < n; t++)
        {
            float* row = x + (long)t * c, o = y + (long)t * c;
            int j = 0;
            for (; j < cv; j += w)
            {
                TV z = TS.Mul(TS.Add(TS.Load(row + j), TS.Mul(TS.Load(mean + j), TS.Splat(-1f))), TS.Load(rstd + j));
                TS.Store(o + j, TS.Mul(z, TS.SoftplusGrad(z)));
            }
            for (; j < c; j++)
            {
                float z = (row[j] - mean[j]) * rstd[j];
                o[j] = z * SimdScalar.SoftplusGrad(z);
            }
        }
    }
}
