using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// SiLU(InstanceNorm(x)) without affine parameters (spec §5, the LSS local branches' IN → SiLU): per (image, channel),
/// mean and biased variance over the H·W pixels, then y = z·sigmoid(z) with z = (x − mean)/√(var + eps). libtorch
/// runs it as a batch norm over a reshaped copy and a separate SiLU, and autograd then keeps both outputs; here it is
/// one kernel in each direction. Channels-last x (the LSS branches', in inference and training) is read image by image
/// with the channels in the vector lanes; NCHW x plane by plane, a plane in L1. Under autograd the node saves only x
/// and its backward recomputes the statistics. <see cref="Reference"/> is the same function in torch ops.
/// </summary>
internal sealed unsafe class InstanceNormSilu : torch.autograd.SingleTensorFunction<InstanceNormSilu>
{
    public override string Name => "MambaAD.InstanceNormSilu";

    /// <summary>
    /// x (B, C, H, W), any memory format: through the node when a gradient of float32 CPU x is wanted, through the
    /// kernels without autograd, else <see cref="Reference"/>. Channels-last x gives channels-last y, other x
    /// NCHW-contiguous y. <paramref name="width"/> forces the vector width (16, 8 or 1) for tests.
    /// </summary>
    public static Tensor Apply(Tensor x, double eps, int? width = null)
    {
        if (x.dtype != ScalarType.Float32 || x.device_type != DeviceType.CPU || x.dim() != 4) return Reference(x, eps);
        int w = width ?? ScanKernels.HardwareWidth;
        return x.requires_grad && is_grad_enabled() ? apply(x, eps, w) : Forward(x, eps, w);
    }

    /// <summary>The same function in torch ops (what the LSS Sequential computes).</summary>
    public static Tensor Reference(Tensor x, double eps) =>
        nn.functional.silu(nn.functional.instance_norm(x, eps: eps));

    /// <summary>vars: x, eps, the vector width.</summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, eps, width) = ((Tensor)vars[0], (double)vars[1], (int)vars[2]);
        ctx.save_for_backward([x]);
        ctx.save_data("eps", eps);
        ctx.save_data("width", width);
        return Forward(x, eps, width);
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad) =>
        [InputGrad(ctx.get_saved_variables()[0], grad, (double)ctx.get_data("eps"), (int)ctx.get_data("width")), null!, null!];

    private static Tensor Forward(Tensor x, double eps, int width) =>
        TensorMemory.IsChannelsLast(x) ? ChannelsLast(x, null, eps, width) : Planes(x, null, eps, width);

    /// <summary>
    /// The gradient of x for the upstream gradient g, both (B, C, H, W) float32: with gz = g·SiLU'(z),
    /// dx = rstd·(gz − mean(gz) − z·mean(gz·z)) per (image, channel). dx has x's layout (channels-last or NCHW); g is
    /// copied to it when it differs.
    /// </summary>
    internal static Tensor InputGrad(Tensor x, Tensor g, double eps, int? width = null)
    {
        if (!x.shape.SequenceEqual(g.shape))
            throw new ArgumentException($"IN + SiLU gradient: x and g of one shape, got [{string.Join(", ", x.shape)}] and [{string.Join(", ", g.shape)}]");
        int w = width ?? ScanKernels.HardwareWidth;
        return TensorMemory.IsChannelsLast(x) ? ChannelsLast(x, g, eps, w) : Planes(x, g, eps, w);
    }

    private struct Args
    {
        public float* X, G, Y;   // x, the upstream gradient (backward only), y or dx
        public int C, HW;
        public float Eps;
    }

    /// <summary>
    /// NCHW: y (g null) or dx, NCHW-contiguous; one task per run of planes of about 16 K floats, each plane in the order
    /// of its own pixels.
    /// </summary>
    private static Tensor Planes(Tensor x, Tensor? g, double eps, int width)
    {
        using var scope = NewDisposeScope();
        var (xc, gc) = (x.contiguous(), g?.contiguous());
        var y = empty_like(xc);
        var p = new Args { X = TensorMemory.Floats(xc), G = gc is null ? null : TensorMemory.Floats(gc), Y = TensorMemory.Floats(y),
            HW = (int)(x.shape[2] * x.shape[3]), Eps = (float)eps };
        int planes = (int)(x.shape[0] * x.shape[1]), perTask = Math.Max(1, 16384 / Math.Max(1, p.HW));
        ScanWorkers.Run((planes + perTask - 1) / perTask, 0, (task, _) =>
        {
            for (int i = task * perTask, end = Math.Min(planes, i + perTask); i < end; i++)
            {
                switch (width)
                {
                    case 16: Plane<Simd512, Vector512<float>>(p, i); break;
                    case 8: Plane<Simd256, Vector256<float>>(p, i); break;
                    default: Plane<SimdScalar, float>(p, i); break;
                }
            }
        });
        GC.KeepAlive(xc); GC.KeepAlive(gc);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One (image, channel) plane of n = H·W floats: Σ(x − x₀), then Σ(x − mean)² around the mean (no cancellation),
    /// then y = z·σ(z); or, with an upstream gradient, gz = g·σ(z)·(1 + z·(1 − σ(z))) into dx with Σgz and Σgz·z,
    /// then dx from them. Four accumulators per sum, in a fixed order: the same bits at any thread count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Plane<TS, TV>(in Args p, int plane) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, n = p.HW, nv = n - n % w;
        long at = (long)plane * n;
        float* x = p.X + at, y = p.Y + at;
        float invN = 1f / n;
        // Σ(x − x[0]): sums near zero when the mean dominates the spread (a conv's bias), so its rounding does not.
        float mean = x[0] + Sum<TS, TV>(x, n, x[0], squares: false) * invN;
        float rstd = 1f / MathF.Sqrt(Sum<TS, TV>(x, n, mean, squares: true) * invN + p.Eps);
        TV negMean = TS.Splat(-mean), vRstd = TS.Splat(rstd), one = TS.Splat(1f), minusOne = TS.Splat(-1f);
        if (p.G == null)
        {
            int t = 0;
            for (; t < nv; t += w)
            {
                TV z = TS.Mul(TS.Add(TS.Load(x + t), negMean), vRstd);
                TS.Store(y + t, TS.Mul(z, TS.SoftplusGrad(z)));   // sigmoid = softplus'
            }
            for (; t < n; t++)
            {
                float z = (x[t] - mean) * rstd;
                y[t] = z * SimdScalar.SoftplusGrad(z);
            }
            return;
        }
        float* g = p.G + at;
        TV sg = TS.Splat(0f), sgz = sg;
        int i = 0;
        for (; i < nv; i += w)
        {
            TV z = TS.Mul(TS.Add(TS.Load(x + i), negMean), vRstd), s = TS.SoftplusGrad(z);
            TV gz = TS.Mul(TS.Mul(TS.Load(g + i), s), TS.Fma(z, TS.Fma(s, minusOne, one), one));
            TS.Store(y + i, gz);
            sg = TS.Add(sg, gz);
            sgz = TS.Fma(gz, z, sgz);
        }
        float sumG = TS.Sum(sg), sumGz = TS.Sum(sgz);
        for (; i < n; i++)
        {
            float z = (x[i] - mean) * rstd, s = SimdScalar.SoftplusGrad(z);
            float gz = g[i] * s * (z * (1f - s) + 1f);
            y[i] = gz;
            sumG += gz;
            sumGz += gz * z;
        }
        // dx = rstd·gz − rstd·mean(gz) − rstd·mean(gz·z)·z, z again from x.
        float a = -rstd * sumG * invN, c = -rstd * sumGz * invN;
        TV va = TS.Splat(a), vc = TS.Splat(c);
        i = 0;
        for (; i < nv; i += w)
        {
            TV z = TS.Mul(TS.Add(TS.Load(x + i), negMean), vRstd);
            TS.Store(y + i, TS.Fma(TS.Load(y + i), vRstd, TS.Fma(z, vc, va)));
        }
        for (; i < n; i++)
        {
            float z = (x[i] - mean) * rstd;
            y[i] = y[i] * rstd + (z * c + a);
        }
    }

    /// <summary>Σ (x − shift), or Σ (x − shift)², over n floats: four vector accumulators, then the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum<TS, TV>(float* x, int n, float shift, bool squares) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, i = 0;
        TV m = TS.Splat(-shift), a0 = TS.Splat(0f), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 4 * w <= n; i += 4 * w)
        {
            TV v0 = TS.Add(TS.Load(x + i), m), v1 = TS.Add(TS.Load(x + i + w), m);
            TV v2 = TS.Add(TS.Load(x + i + 2 * w), m), v3 = TS.Add(TS.Load(x + i + 3 * w), m);
            if (squares) { a0 = TS.Fma(v0, v0, a0); a1 = TS.Fma(v1, v1, a1); a2 = TS.Fma(v2, v2, a2); a3 = TS.Fma(v3, v3, a3); }
            else { a0 = TS.Add(a0, v0); a1 = TS.Add(a1, v1); a2 = TS.Add(a2, v2); a3 = TS.Add(a3, v3); }
        }
        for (; i + w <= n; i += w)
        {
            TV v = TS.Add(TS.Load(x + i), m);
            a0 = squares ? TS.Fma(v, v, a0) : TS.Add(a0, v);
        }
        float sum = TS.Sum(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)));
        for (; i < n; i++)
        {
            float d = x[i] - shift;
            sum += squares ? d * d : d;
        }
        return sum;
    }

    /// <summary>
    /// Channels-last x (a (B, C, H, W) view of (B, H, W, C) memory): y (g null) or dx, channels-last; one task per image.
    /// </summary>
    private static Tensor ChannelsLast(Tensor x, Tensor? g, double eps, int width)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1];
        var xl = x.permute(0, 2, 3, 1);                                  // (B, H, W, C), contiguous
        var gl = g?.permute(0, 2, 3, 1).contiguous();                    // a view when g is channels-last too
        var y = empty_like(xl);
        var p = new Args { X = TensorMemory.Floats(xl), G = gl is null ? null : TensorMemory.Floats(gl), Y = TensorMemory.Floats(y),
            C = (int)c, HW = (int)(x.shape[2] * x.shape[3]), Eps = (float)eps };
        ScanWorkers.Run((int)b, 4L * c, (i, buf) =>
        {
            switch (width)
            {
                case 16: Image<Simd512, Vector512<float>>(p, i, buf); break;
                case 8: Image<Simd256, Vector256<float>>(p, i, buf); break;
                default: Image<SimdScalar, float>(p, i, buf); break;
            }
        });
        GC.KeepAlive(xl); GC.KeepAlive(gl);
        return y.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One channels-last image, vectorised over channels (the tail channels one by one): mean and rstd per channel
    /// (<see cref="ImageStats"/>), then y = z·σ(z); or, with an upstream gradient, gz into dx with Σgz and Σgz·z per
    /// channel, then dx from them, as <see cref="Plane"/> does for one plane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Image<TS, TV>(in Args p, int b, float* scratch) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, c = p.C, n = p.HW, cv = c - c % w;
        long at = (long)b * n * c;
        float* x = p.X + at, y = p.Y + at, mean = scratch, rstd = scratch + c, sg = scratch + 2 * c, sgz = scratch + 3 * c;
        ImageStats<TS, TV>(x, c, n, p.Eps, mean, rstd);
        TV one = TS.Splat(1f), minusOne = TS.Splat(-1f);
        if (p.G == null)
        {
            for (int t = 0; t < n; t++)
            {
                float* row = x + (long)t * c, o = y + (long)t * c;
                int j = 0;
                for (; j < cv; j += w)
                {
                    TV z = TS.Mul(TS.Add(TS.Load(row + j), TS.Mul(TS.Load(mean + j), minusOne)), TS.Load(rstd + j));
                    TS.Store(o + j, TS.Mul(z, TS.SoftplusGrad(z)));   // sigmoid = softplus'
                }
                for (; j < c; j++)
                {
                    float z = (row[j] - mean[j]) * rstd[j];
                    o[j] = z * SimdScalar.SoftplusGrad(z);
                }
            }
            return;
        }
        float* g = p.G + at;
        new Span<float>(sg, 2 * c).Clear();
        for (int t = 0; t < n; t++)
        {
            float* row = x + (long)t * c, grow = g + (long)t * c, o = y + (long)t * c;
            int j = 0;
            for (; j < cv; j += w)
            {
                TV z = TS.Mul(TS.Add(TS.Load(row + j), TS.Mul(TS.Load(mean + j), minusOne)), TS.Load(rstd + j)), s = TS.SoftplusGrad(z);
                TV gz = TS.Mul(TS.Mul(TS.Load(grow + j), s), TS.Fma(z, TS.Fma(s, minusOne, one), one));
                TS.Store(o + j, gz);
                TS.Store(sg + j, TS.Add(TS.Load(sg + j), gz));
                TS.Store(sgz + j, TS.Fma(gz, z, TS.Load(sgz + j)));
            }
            for (; j < c; j++)
            {
                float z = (row[j] - mean[j]) * rstd[j], s = SimdScalar.SoftplusGrad(z);
                float gz = grow[j] * s * (z * (1f - s) + 1f);
                o[j] = gz;
                sg[j] += gz;
                sgz[j] += gz * z;
            }
        }
        // dx = rstd·gz − rstd·mean(gz) − rstd·mean(gz·z)·z: sg and sgz become those two coefficients.
        float invN = 1f / n;
        for (int j = 0; j < c; j++) { sg[j] = -rstd[j] * sg[j] * invN; sgz[j] = -rstd[j] * sgz[j] * invN; }
        for (int t = 0; t < n; t++)
        {
            float* row = x + (long)t * c, o = y + (long)t * c;
            int j = 0;
            for (; j < cv; j += w)
            {
                TV r = TS.Load(rstd + j), z = TS.Mul(TS.Add(TS.Load(row + j), TS.Mul(TS.Load(mean + j), minusOne)), r);
                TS.Store(o + j, TS.Fma(TS.Load(o + j), r, TS.Fma(z, TS.Load(sgz + j), TS.Load(sg + j))));
            }
            for (; j < c; j++)
            {
                float z = (row[j] - mean[j]) * rstd[j];
                o[j] = o[j] * rstd[j] + (z * sgz[j] + sg[j]);
            }
        }
    }

    /// <summary>
    /// Per channel of one channels-last image: the mean from Σ (x − the first pixel's x), sums near zero when the mean
    /// dominates the spread, and rstd = 1/√(var + eps) from Σ (x − mean)² around it (no cancellation of Σx² − n·mean²).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ImageStats<TS, TV>(float* x, int c, int n, float eps, float* mean, float* rstd) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, cv = c - c % w;
        TV minusOne = TS.Splat(-1f);
        new Span<float>(mean, 2 * c).Clear();   // mean and rstd, side by side
        for (int t = 1; t < n; t++)
        {
            float* row = x + (long)t * c;
            int j = 0;
            for (; j < cv; j += w) TS.Store(mean + j, TS.Add(TS.Load(mean + j), TS.Add(TS.Load(row + j), TS.Mul(TS.Load(x + j), minusOne))));
            for (; j < c; j++) mean[j] += row[j] - x[j];
        }
        float invN = 1f / n;
        for (int j = 0; j < c; j++) mean[j] = x[j] + mean[j] * invN;
        for (int t = 0; t < n; t++)
        {
            float* row = x + (long)t * c;
            int j = 0;
            for (; j < cv; j += w)
            {
                TV d = TS.Add(TS.Load(row + j), TS.Mul(TS.Load(mean + j), minusOne));
                TS.Store(rstd + j, TS.Fma(d, d, TS.Load(rstd + j)));
            }
            for (; j < c; j++) { float d = row[j] - mean[j]; rstd[j] += d * d; }
        }
        for (int j = 0; j < c; j++) rstd[j] = 1f / MathF.Sqrt(rstd[j] * invN + eps);
    }
}
