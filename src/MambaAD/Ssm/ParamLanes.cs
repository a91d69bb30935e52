using System.Runtime.InteropServices;

namespace MambaAD.Ssm;

/// <summary>
/// The per-channel parameters of one kernel call (A, D, the Δ bias, Wdt) in the kernels' lane layout, built once per
/// call and shared by every task: for direction k and block cb of W channels, A[·, n] of the block is one vector
/// (padded lanes 0). Each kind is (K, blocks, ·, W): A·log2 e and A (N·W per block), D and bias (W), Wdt (R·W).
/// Transposing them per task and direction instead cost ~40 % of the forward at the 8×8 stage (L = 64: few steps
/// per transpose), and as many transposes as there are batch elements.
/// </summary>
internal readonly unsafe struct ParamLanes : IDisposable
{
    private readonly float* _mem;
    private readonly int _nb, _n, _r, _w;

    /// <summary>A·log2 e (the forward's exp(δA) = 2^(δ·A·log2 e)), A, D, bias and Wdt lanes of direction 0.</summary>
    public readonly float* A2, A, D, Bias, Wdt;

    private ParamLanes(in ScanParams p, int w)
    {
        _nb = ScanKernels.Blocks(p.Dg, w);
        _n = p.N;
        _r = p.R;
        _w = w;
        long dirFloats = (long)_nb * w * (2L * p.N + 2 + p.R);
        _mem = (float*)NativeMemory.AlignedAlloc((nuint)(p.K * dirFloats * 4), 64);
        long kb = (long)p.K * _nb * w;
        A2 = _mem;
        A = A2 + kb * p.N;
        D = A + kb * p.N;
        Bias = D + kb;
        Wdt = Bias + kb;
    }

    /// <summary>The lanes of <paramref name="p"/>'s parameters at width <paramref name="w"/>, one direction per task.</summary>
    public static ParamLanes Build(ScanParams p, int w)
    {
        var lanes = new ParamLanes(p, w);
        ScanWorkers.Run(p.K, 0, (k, _) => lanes.Fill(p, k));
        return lanes;
    }

    // Offsets of direction k's (and block cb's) lanes in each kind.
    private long Block(int k, int cb) => (long)k * _nb + cb;
    public float* A2Of(int k, int cb = 0) => A2 + Block(k, cb) * _n * _w;
    public float* AOf(int k, int cb = 0) => A + Block(k, cb) * _n * _w;
    public float* DOf(int k, int cb = 0) => D + Block(k, cb) * _w;
    public float* BiasOf(int k, int cb = 0) => Bias + Block(k, cb) * _w;
    public float* WdtOf(int k, int cb = 0) => Wdt + Block(k, cb) * _r * _w;

    private void Fill(in ScanParams p, int k)
    {
        int N = p.N, R = p.R, w = _w;
        for (int cb = 0; cb < _nb; cb++)
        {
            float* a2 = A2Of(k, cb), a = AOf(k, cb), d = DOf(k, cb), bias = BiasOf(k, cb), wdt = WdtOf(k, cb);
            int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
            for (int j = 0; j < w; j++)
            {
                bool ok = j < nc;
                long ch = (long)k * p.Dg + c0 + j;
                d[j] = ok ? p.D[ch] : 0f;
                bias[j] = ok ? p.Bias[ch] : 0f;
                for (int n = 0; n < N; n++)
                {
                    float an = ok ? p.A[ch * N + n] : 0f;
                    a[n * w + j] = an;
                    a2[n * w + j] = an * FastExp.Log2E;
                }
                for (int r = 0; r < R; r++) wdt[r * w + j] = ok ? p.Wdt[ch * R + r] : 0f;
            }
        }
    }

    public void Dispose() => NativeMemory.AlignedFree(_mem);
}
