using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;
using static MambaAD.Util.TensorMemory;
using static TorchSharp.torch;

namespace MambaAD.Benchmarks;

/// <summary>
/// The layout the production kernel did not choose, kept so the benchmark can show why (docs/performance.md,
/// "Selective scan"): SIMD over the N = 16 states of one channel (one Vector512 per state vector), channels one after
/// another, no transposes; y_t needs a horizontal sum per step. The plain scan of
/// <see cref="SelectiveScanReference.Scan"/> (no paths, softplus on), forward only, N = 16, AVX-512 only.
/// </summary>
internal static unsafe class OverStatesScan
{
    /// <summary>Whether this machine runs the variant (it needs AVX-512).</summary>
    public static bool Supported => Vector512.IsHardwareAccelerated;

    /// <summary>y (Bt, Dt, L) for the arguments of <see cref="SelectiveScanReference.Scan"/>, float32 CPU, N = 16.</summary>
    public static Tensor Forward(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor bias)
    {
        if (A.shape[1] != 16 || !Supported)
            throw new NotSupportedException("the over-states variant takes N = 16 on AVX-512 only");
        using var scope = NewDisposeScope();
        var uc = u.contiguous(); var dc = delta.contiguous(); var ac = A.contiguous();
        var dd = D.contiguous(); var bc = bias.contiguous();
        var bt = B.transpose(2, 3).contiguous(); var ct = C.transpose(2, 3).contiguous();   // (Bt, K, L, N)
        var y = empty_like(uc);
        int batch = (int)u.shape[0], k = (int)B.shape[1], dg = (int)(u.shape[1] / k), l = (int)u.shape[2];
        var args = new Args
        {
            U = Floats(uc), Delta = Floats(dc), A = Floats(ac), BT = Floats(bt), CT = Floats(ct), D = Floats(dd),
            Bias = Floats(bc), Y = Floats(y),
            K = k, Dg = dg, L = l,
        };
        const int blk = 16;
        int nb = (dg + blk - 1) / blk;
        ScanWorkers.Run(batch * k * nb, l, (task, buf) =>
        {
            int cb = task % nb, rest = task / nb, kk = rest % k, b = rest / k;
            ChannelBlock(args, b, kk, cb * blk, Math.Min(blk, dg - cb * blk), buf);
        });
        GC.KeepAlive(new object[] { uc, dc, ac, dd, bc, bt, ct });
        return y.MoveToOuterDisposeScope();
    }

    private struct Args
    {
        public float* U, Delta, A, BT, CT, D, Bias, Y;
        public int K, Dg, L;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ChannelBlock(in Args p, int b, int k, int c0, int nc, float* dl)
    {
        int L = p.L;
        float* bk = p.BT + ((long)b * p.K + k) * L * 16, ck = p.CT + ((long)b * p.K + k) * L * 16;
        for (int j = 0; j < nc; j++)
        {
            long ch = (long)k * p.Dg + c0 + j;
            long row = ((long)b * p.K * p.Dg + ch) * L;
            float* u = p.U + row, d = p.Delta + row, y = p.Y + row;
            float bias = p.Bias[ch], dskip = p.D[ch];
            int t = 0;
            for (; t + 16 <= L; t += 16)
                Simd512.Softplus(Vector512.Load(d + t) + Vector512.Create(bias)).Store(dl + t);
            for (; t < L; t++) dl[t] = SimdScalar.Softplus(d[t] + bias);
            var a2 = Vector512.Load(p.A + ch * 16) * Vector512.Create(FastExp.Log2E);
            var h = Vector512<float>.Zero;
            for (t = 0; t < L; t++)
            {
                float dt = dl[t], ut = u[t];
                var a = FastExp.Exp2NonPositive(a2 * Vector512.Create(dt));
                h = Vector512.FusedMultiplyAdd(a, h, Vector512.Load(bk + (long)t * 16) * Vector512.Create(dt * ut));
                y[t] = Vector512.Sum(h * Vector512.Load(ck + (long)t * 16)) + dskip * ut;
            }
        }
    }

}
