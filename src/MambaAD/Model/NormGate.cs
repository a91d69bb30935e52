using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// SS2D's out_norm(y) · SiLU(z) (spec §7.1), fused both ways. The forward is one pass per pixel (<see cref="Forward"/>,
/// with or without autograd), and under autograd the node keeps only y and z (no norm output, no SiLU). libtorch's
/// backward of the same composition recomputed it and then made about ten passes over (B, H, W, d_inner) tensors, 2.7 ×
/// the forward's time; here one pass per pixel reads y, z and the incoming gradient and writes dy and dz, each pixel's
/// d_inner channels staying in L1 (docs/performance.md, "Issue 14, phase 8"). The reference is libtorch's composition
/// and its autograd (<see cref="Reference"/>; the tests compare the two).
/// </summary>
internal sealed class NormGate : torch.autograd.SingleTensorFunction<NormGate>
{
    public override string Name => "MambaAD.NormGate";

    /// <summary>Pixels per task: a fixed split (not one per thread), so the weight gradients sum in the same order whatever the thread count.</summary>
    internal const int PixelsPerTask = 64;

    /// <summary>layer_norm(y over its last dim, weight, bias, eps) · silu(z), for y and z of one shape (…, d).</summary>
    public static Tensor Apply(Tensor y, Tensor z, Tensor weight, Tensor bias, double eps) =>
        !KernelApplies(y, z, weight, bias) ? Reference(y, z, weight, bias, eps)
        : WantsGradient(y, z, weight, bias) ? apply(y, z, weight, bias, eps) : Forward(y, z, weight, bias, eps);

    /// <summary>The composition in libtorch ops: the kernels' reference, and the path where they do not apply.</summary>
    internal static Tensor Reference(Tensor y, Tensor z, Tensor weight, Tensor bias, double eps) =>
        nn.functional.layer_norm(y, [y.shape[^1]], weight, bias, eps) * nn.functional.silu(z);

    /// <summary>
    /// Every tensor is float32 on the CPU, d a multiple of the 8-float vector that the kernels step by, and vectors of
    /// 8 floats are native (elsewhere libtorch's ops are the faster path).
    /// </summary>
    internal static bool KernelApplies(Tensor y, Tensor z, Tensor weight, Tensor bias) =>
        Vector256.IsHardwareAccelerated && y.shape.SequenceEqual(z.shape) && y.shape[^1] % Vector256<float>.Count == 0
        && new[] { y, z, weight, bias }.All(t => t.dtype == ScalarType.Float32 && t.device_type == DeviceType.CPU);

    /// <summary>The kernels apply and a gradient is wanted: this autograd node, whose forward is <see cref="Forward"/>.</summary>
    internal static bool TakesThisNode(Tensor y, Tensor z, Tensor weight, Tensor bias) =>
        WantsGradient(y, z, weight, bias) && KernelApplies(y, z, weight, bias);

    private static bool WantsGradient(Tensor y, Tensor z, Tensor weight, Tensor bias) =>
        is_grad_enabled() && (y.requires_grad || z.requires_grad || weight.requires_grad || bias.requires_grad);

    /// <summary>vars: y, z, weight, bias, eps.</summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (y, z, weight, bias, eps) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (double)vars[4]);
        ctx.save_for_backward([y, z, weight, bias]);
        ctx.save_data("eps", eps);
        return Forward(y, z, weight, bias, eps);
    }

    /// <summary>dy, dz, dweight, dbias (null for an input that needs none), eps none.</summary>
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (y, z, weight, bias) = (s[0], s[1], s[2], s[3]);
        using var scope = NewDisposeScope();
        var (dy, dz, dw, db) = Backward(y.contiguous(), z.contiguous(), weight.contiguous(), bias.contiguous(),
            grad.contiguous(), (double)ctx.get_data("eps"));
        Tensor? Keep(Tensor t, bool wanted) => wanted ? t.MoveToOuterDisposeScope() : null;
        return [Keep(dy, y.requires_grad)!, Keep(dz, z.requires_grad)!, Keep(dw, weight.requires_grad)!,
            Keep(db, bias.requires_grad)!, null!];
    }

    /// <summary>
    /// The forward for float32 y, z (…, d) and weight, bias (d): one pass per pixel, its d channels in L1 (the
    /// statistics, then ŷ·w + b times z·sigmoid(z)), where libtorch's layer_norm, silu and product made three passes over
    /// the tensors and two intermediates (docs/performance.md, phase 29). The statistics are the backward's (8-float
    /// vectors); the output runs in 16-float vectors where those are native, its sigmoid the kernels' softplus'
    /// (<see cref="FastExp"/>'s exponential, within a few float32 ulp of libtorch's).
    /// </summary>
    internal static unsafe Tensor Forward(Tensor y, Tensor z, Tensor weight, Tensor bias, double eps)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (yc, zc, wc, bc) = (y.contiguous(), z.contiguous(), weight.contiguous(), bias.contiguous());
        int d = (int)yc.shape[^1];
        long pixels = yc.numel() / d;
        int tasks = checked((int)((pixels + PixelsPerTask - 1) / PixelsPerTask));
        var output = empty_like(yc);
        float* py = TensorMemory.Floats(yc), pz = TensorMemory.Floats(zc), pw = TensorMemory.Floats(wc);
        float* pb = TensorMemory.Floats(bc), po = TensorMemory.Floats(output);
        float fEps = (float)eps;
        ScanWorkers.Run(tasks, 0, (task, _) =>
        {
            long p1 = Math.Min(pixels, (long)(task + 1) * PixelsPerTask);
            for (long p = (long)task * PixelsPerTask; p < p1; p++) PixelForward(d, fEps, py + p * d, pz + p * d, pw, pb, po + p * d);
        });
        return output.MoveToOuterDisposeScope();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PixelForward(int d, float eps, float* y, float* z, float* w, float* b, float* output)
    {
        var (mean, rstd) = Statistics(d, eps, y);
        int c = Vector512.IsHardwareAccelerated ? GateChannels<Simd512, Vector512<float>>(0, d, mean, rstd, y, z, w, b, output) : 0;
        GateChannels<Simd256, Vector256<float>>(c, d, mean, rstd, y, z, w, b, output);
    }

    /// <summary>(ŷ·w + b)·SiLU(z) for the channels from c0 in whole vectors of TS.Width; returns the first channel left.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int GateChannels<TS, TV>(int c0, int d, float mean, float rstd, float* y, float* z, float* w,
        float* b, float* output) where TS : ISimd<TV> where TV : struct
    {
        TV negMean = TS.Splat(-mean), r = TS.Splat(rstd);
        int c = c0;
        for (; c + TS.Width <= d; c += TS.Width)
        {
            var n = TS.Fma(TS.Mul(TS.Add(TS.Load(y + c), negMean), r), TS.Load(w + c), TS.Load(b + c));
            var zc = TS.Load(z + c);
            TS.Store(output + c, TS.Mul(n, TS.Mul(zc, TS.SoftplusGrad(zc))));   // SiLU: sigmoid = softplus'
        }
        return c;
    }

    /// <summary>One pixel's mean and 1/√(var + eps) over its d channels (biased variance, as layer_norm).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe (float Mean, float Rstd) Statistics(int d, float eps, float* y)
    {
        int v = Vector256<float>.Count;
        var acc = Vector256<float>.Zero;
        for (int c = 0; c < d; c += v) acc += Vector256.Load(y + c);
        float mean = Vector256.Sum(acc) / d;
        var meanV = Vector256.Create(mean);
        acc = Vector256<float>.Zero;
        for (int c = 0; c < d; c += v)
        {
            var t = Vector256.Load(y + c) - meanV;
            acc = Vector256.FusedMultiplyAdd(t, t, acc);
        }
        return (mean, 1f / MathF.Sqrt(Vector256.Sum(acc) / d + eps));
    }

    /// <summary>
    /// The gradients for contiguous float32 y, z, g (…, d) and weight, bias (d). Per pixel, with ŷ = (y − μ)·rstd,
    /// n = ŷ·w + b, σ = sigmoid(z): dz = g·n·σ·(1 + z(1 − σ)); dn = g·z·σ, dŷ = dn·w;
    /// dy = rstd·(dŷ − mean(dŷ) − ŷ·mean(dŷ·ŷ)); dw = Σ dn·ŷ, db = Σ dn over the pixels, per task of
    /// <see cref="PixelsPerTask"/> pixels, then summed over the tasks in order (<see cref="OrderedSum"/>): deterministic.
    /// </summary>
    internal static unsafe (Tensor Dy, Tensor Dz, Tensor Dw, Tensor Db) Backward(Tensor y, Tensor z, Tensor weight,
        Tensor bias, Tensor g, double eps)
    {
        int d = (int)y.shape[^1];
        long pixels = y.numel() / d;
        int tasks = checked((int)((pixels + PixelsPerTask - 1) / PixelsPerTask));
        var dy = empty_like(y);
        var dz = empty_like(z);
        var partials = empty(tasks, 2, d);   // per task: dw, db
        float* py = TensorMemory.Floats(y), pz = TensorMemory.Floats(z), pg = TensorMemory.Floats(g);
        float* pw = TensorMemory.Floats(weight), pb = TensorMemory.Floats(bias);
        float* pdy = TensorMemory.Floats(dy), pdz = TensorMemory.Floats(dz), pp = TensorMemory.Floats(partials);
        float fEps = (float)eps;
        ScanWorkers.Run(tasks, d, (task, scratch) =>
        {
            long p0 = (long)task * PixelsPerTask, p1 = Math.Min(pixels, p0 + PixelsPerTask);
            float* dwAcc = pp + (long)task * 2 * d, dbAcc = dwAcc + d;
            new Span<float>(dwAcc, 2 * d).Clear();
            for (long p = p0; p < p1; p++)
            {
                long o = p * d;
                Pixel(d, fEps, py + o, pz + o, pg + o, pw, pb, pdy + o, pdz + o, dwAcc, dbAcc, scratch);
            }
        });
        using var sum = OrderedSum.OverRows(partials);
        partials.Dispose();
        return (dy, dz, sum[0].clone(), sum[1].clone());
    }

    /// <summary>One pixel's d channels: its statistics, then dz and dŷ (into scratch) with their sums, then dy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Pixel(int d, float eps, float* y, float* z, float* g, float* w, float* b, float* dy, float* dz,
        float* dwAcc, float* dbAcc, float* dyHat)
    {
        int v = Vector256<float>.Count;
        var (m, r) = Statistics(d, eps, y);
        var (mean, rstd, one) = (Vector256.Create(m), Vector256.Create(r), Vector256<float>.One);
        Vector256<float> sumDyHat = Vector256<float>.Zero, sumDyHatYHat = Vector256<float>.Zero;
        for (int c = 0; c < d; c += v)
        {
            var yHat = (Vector256.Load(y + c) - mean) * rstd;
            var zc = Vector256.Load(z + c);
            var gc = Vector256.Load(g + c);
            var wc = Vector256.Load(w + c);
            var sig = Simd256.SoftplusGrad(zc);   // sigmoid = softplus' (its 1 above 20 is float32's sigmoid)
            var n = Vector256.FusedMultiplyAdd(yHat, wc, Vector256.Load(b + c));
            (gc * n * sig * Vector256.FusedMultiplyAdd(zc, one - sig, one)).Store(dz + c);
            var dn = gc * zc * sig;
            Vector256.FusedMultiplyAdd(dn, yHat, Vector256.Load(dwAcc + c)).Store(dwAcc + c);
            (Vector256.Load(dbAcc + c) + dn).Store(dbAcc + c);
            var dyh = dn * wc;
            dyh.Store(dyHat + c);
            sumDyHat += dyh;
            sumDyHatYHat = Vector256.FusedMultiplyAdd(dyh, yHat, sumDyHatYHat);
        }
        var meanDyHat = Vector256.Create(Vector256.Sum(sumDyHat) / d);
        var meanDyHatYHat = Vector256.Create(Vector256.Sum(sumDyHatYHat) / d);
        for (int c = 0; c < d; c += v)
        {
            var yHat = (Vector256.Load(y + c) - mean) * rstd;
            (rstd * (Vector256.Load(dyHat + c) - meanDyHat - yHat * meanDyHatYHat)).Store(dy + c);
        }
    }
}
