// Forward of the projected scan (spec §7.3, §8.2–8.3; math and layout in ScanKernels.cs).
//
// Tasks are (batch, block of W channels) and loop over the K directions, so each task owns its rows of y: no races,
// deterministic sums. Per task: u's block is copied into an (L, W) buffer and y accumulated in another, both
// L2-resident and read at pixel π_k(t). Per direction and per segment of ScanKernels.Segment steps:
//   1. ProjectDelta: δ_t = softplus(Wdt·x_r,t + bias) for every step of the segment, into an (Segment, W) buffer.
//   2. Recurrence: for each step, the N states h[n] ← exp(δ·A[n])·h[n] + δ·u·B_t[n] and y += Σ_n C_t[n]·h[n] + D·u.
// exp(δA) is computed as 2^(δ·A·log2 e) (FastExp.Exp2NonPositive) with A·log2 e from ParamLanes. With a backward
// to follow, h is stored at every chunk boundary (ScanKernels.Chunk steps).

using System.Runtime.CompilerServices;

namespace MambaAD.Ssm;

internal static unsafe class ScanForward
{
    public static void Run<TS, TV>(ScanParams p) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nb = ScanKernels.Blocks(p.Dg, w);
        long work = 2L * p.L * w + (long)(ScanKernels.Segment + p.N) * w;
        using var lanes = ParamLanes.Build(p, w);
        ScanWorkers.Run(p.Bt * nb, work, (task, buf) => BlockTask<TS, TV>(p, lanes, task / nb, task % nb, buf));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BlockTask<TS, TV>(in ScanParams p, in ParamLanes lanes, int b, int cb, float* buf)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, L = p.L, N = p.N, rs = p.R + 2 * N, nb = ScanKernels.Blocks(p.Dg, w);
        int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
        // Scratch: u and y of the block (L, W); δ of one segment (Segment, W); h (N, W).
        float* uT = buf, yT = uT + (long)L * w, dSeg = yT + (long)L * w, h = dSeg + ScanKernels.Segment * w;
        long bl = (long)b * L * p.Dg;
        ScanRows.RowsIn<TS, TV>(p.U + bl + c0, L, p.Dg, nc, uT);
        new Span<float>(yT, L * w).Clear();
        for (int k = 0; k < p.K; k++)
        {
            float* aT = lanes.A2Of(k, cb);   // exp(δA) = 2^(δ·A·log2 e)
            new Span<float>(h, N * w).Clear();
            long* path = p.Paths + (long)k * L;
            float* hk = p.H == null ? null : p.H + ((((long)b * p.K + k) * nb + cb) * p.NChunks) * N * w;
            float* xk = p.XS + ((long)b * p.K + k) * L * rs, bk = xk + p.R, ck = bk + N;
            var proj = new Projection<TV>(xk, p.R, lanes.WdtOf(k, cb), TS.Load(lanes.BiasOf(k, cb)));
            TV dv0 = TS.Load(lanes.DOf(k, cb));
            for (int t0 = 0; t0 < L; t0 += ScanKernels.Segment)
            {
                int t1 = Math.Min(L, t0 + ScanKernels.Segment);
                float* dT = dSeg - (long)t0 * w;   // δ_t at dT + t·W for the segment's t: the rows of dSeg, in L1
                ProjectDelta<TS, TV>(proj, t0, t1, rs, dT);
                // With states to store, the recurrence stops at each chunk start (Segment is a multiple of Chunk).
                int run = hk == null ? ScanKernels.Segment : p.Chunk;
                for (int tc = t0; tc < t1; tc += run)
                {
                    if (hk != null) Buffer.MemoryCopy(h, hk + (long)(tc / p.Chunk) * N * w, N * w * 4L, N * w * 4L);
                    Recurrence<TS, TV>(tc, Math.Min(t1, tc + run), N, rs, path, dT, uT, yT, bk, ck, aT, h, dv0);
                }
            }
        }
        ScanRows.RowsOut<TS, TV>(yT, L, p.Dg, nc, p.Y + bl + c0);
    }

    /// <summary>
    /// The recurrence of one direction over steps t0…t1−1 for one block of W channels. δ_t, B_t and C_t are read in
    /// step order (B_t[n] at bk[t·bcStride + n]); u and y at pixel π(t), y accumulated. h (N·W floats, in L1) is
    /// carried in place. A method of its own so that the JIT keeps the polynomial's constants in registers (inside
    /// the task's loop it ran out of them and reloaded seven per state). N = 16 (every MambaAD model) takes
    /// <see cref="Recurrence16"/>; this loop over n is its reference and serves other N.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Recurrence<TS, TV>(int t0, int t1, int N, int bcStride, long* path, float* dT, float* uT, float* yT,
        float* bk, float* ck, float* aT, float* h, TV dv0) where TS : ISimd<TV> where TV : struct
    {
        if (N == 16)
        {
            if (TS.Width == 16) Recurrence16InRegisters<TS, TV>(t0, t1, bcStride, path, dT, uT, yT, bk, ck, aT, h, dv0);
            else Recurrence16<TS, TV>(t0, t1, bcStride, path, dT, uT, yT, bk, ck, aT, h, dv0);
            return;
        }
        int w = TS.Width;
        for (int t = t0; t < t1; t++)
        {
            long pos = path[t];
            TV dl = TS.Load(dT + (long)t * w);
            TV uv = TS.Load(uT + pos * w);
            TV du = TS.Mul(dl, uv);
            TV y = TS.Mul(dv0, uv), y1 = TS.Splat(0f);
            float* bt = bk + (long)t * bcStride, ct = ck + (long)t * bcStride;
            int n = 0;
            for (; n + 1 < N; n += 2)
            {
                y = TS.Fma(StateStep<TS, TV>(h + n * w, aT + n * w, dl, du, bt + n), TS.Splat(ct[n]), y);
                y1 = TS.Fma(StateStep<TS, TV>(h + (n + 1) * w, aT + (n + 1) * w, dl, du, bt + n + 1), TS.Splat(ct[n + 1]), y1);
            }
            if (n < N) y = TS.Fma(StateStep<TS, TV>(h + n * w, aT + n * w, dl, du, bt + n), TS.Splat(ct[n]), y);
            float* yp = yT + pos * w;
            TS.Store(yp, TS.Add(TS.Load(yp), TS.Add(y, y1)));
        }
    }

    /// <summary>
    /// <see cref="Recurrence"/> for N = 16 with the states written out, so every h, A and B/C address is a constant
    /// offset (the loop's n·W arithmetic cost scalar µops on the vector ports), and two y accumulators (enough: the
    /// step is throughput-bound; more cost registers the 16-register AVX2 file does not have).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Recurrence16<TS, TV>(int t0, int t1, int bcStride, long* path, float* dT, float* uT, float* yT,
        float* bk, float* ck, float* aT, float* h, TV dv0) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        for (int t = t0; t < t1; t++)
        {
            long pos = path[t];
            TV dl = TS.Load(dT + (long)t * w);
            TV uv = TS.Load(uT + pos * w);
            TV du = TS.Mul(dl, uv);
            float* bt = bk + (long)t * bcStride, ct = ck + (long)t * bcStride;
            TV y = TS.Mul(dv0, uv), y1 = TS.Splat(0f);
            y = States2<TS, TV>(0, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(2, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(4, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(6, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(8, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(10, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(12, h, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(14, h, aT, dl, du, bt, ct, y, ref y1);
            float* yp = yT + pos * w;
            TS.Store(yp, TS.Add(TS.Load(yp), TS.Add(y, y1)));
        }
    }

    /// <summary>
    /// <see cref="Recurrence16"/> with the 16 states in registers over the run of steps, loaded from and stored back to
    /// h at its ends: one load and one store fewer per state and step, the same bits. Only at 16 lanes: AVX-512's 32
    /// registers hold them beside the step's operands, AVX2's 16 do not (docs/performance.md, phase 26).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Recurrence16InRegisters<TS, TV>(int t0, int t1, int bcStride, long* path, float* dT, float* uT,
        float* yT, float* bk, float* ck, float* aT, float* h, TV dv0) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        TV h0 = TS.Load(h), h1 = TS.Load(h + w), h2 = TS.Load(h + 2 * w), h3 = TS.Load(h + 3 * w);
        TV h4 = TS.Load(h + 4 * w), h5 = TS.Load(h + 5 * w), h6 = TS.Load(h + 6 * w), h7 = TS.Load(h + 7 * w);
        TV h8 = TS.Load(h + 8 * w), h9 = TS.Load(h + 9 * w), h10 = TS.Load(h + 10 * w), h11 = TS.Load(h + 11 * w);
        TV h12 = TS.Load(h + 12 * w), h13 = TS.Load(h + 13 * w), h14 = TS.Load(h + 14 * w), h15 = TS.Load(h + 15 * w);
        for (int t = t0; t < t1; t++)
        {
            long pos = path[t];
            TV dl = TS.Load(dT + (long)t * w);
            TV uv = TS.Load(uT + pos * w);
            TV du = TS.Mul(dl, uv);
            float* bt = bk + (long)t * bcStride, ct = ck + (long)t * bcStride;
            TV y = TS.Mul(dv0, uv), y1 = TS.Splat(0f);
            y = States2<TS, TV>(0, ref h0, ref h1, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(2, ref h2, ref h3, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(4, ref h4, ref h5, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(6, ref h6, ref h7, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(8, ref h8, ref h9, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(10, ref h10, ref h11, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(12, ref h12, ref h13, aT, dl, du, bt, ct, y, ref y1);
            y = States2<TS, TV>(14, ref h14, ref h15, aT, dl, du, bt, ct, y, ref y1);
            float* yp = yT + pos * w;
            TS.Store(yp, TS.Add(TS.Load(yp), TS.Add(y, y1)));
        }
        TS.Store(h, h0); TS.Store(h + w, h1); TS.Store(h + 2 * w, h2); TS.Store(h + 3 * w, h3);
        TS.Store(h + 4 * w, h4); TS.Store(h + 5 * w, h5); TS.Store(h + 6 * w, h6); TS.Store(h + 7 * w, h7);
        TS.Store(h + 8 * w, h8); TS.Store(h + 9 * w, h9); TS.Store(h + 10 * w, h10); TS.Store(h + 11 * w, h11);
        TS.Store(h + 12 * w, h12); TS.Store(h + 13 * w, h13); TS.Store(h + 14 * w, h14); TS.Store(h + 15 * w, h15);
    }

    /// <summary>The pointer version of <c>States2</c> (below) on states held in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV States2<TS, TV>(int n, ref TV hn, ref TV hn1, float* aT, TV dl, TV du, float* bt, float* ct, TV y, ref TV y1)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        hn1 = StateStep<TS, TV>(hn1, aT + (n + 1) * w, dl, du, bt + n + 1);
        y1 = TS.Fma(hn1, TS.SplatLoad(ct + n + 1), y1);
        hn = StateStep<TS, TV>(hn, aT + n * w, dl, du, bt + n);
        return TS.Fma(hn, TS.SplatLoad(ct + n), y);
    }

    /// <summary>States n and n + 1 (n a constant at the call site): y += C[n]·h[n], y1 += C[n+1]·h[n+1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV States2<TS, TV>(int n, float* h, float* aT, TV dl, TV du, float* bt, float* ct, TV y, ref TV y1)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        y1 = TS.Fma(StateStep<TS, TV>(h + (n + 1) * w, aT + (n + 1) * w, dl, du, bt + n + 1), TS.SplatLoad(ct + n + 1), y1);
        return TS.Fma(StateStep<TS, TV>(h + n * w, aT + n * w, dl, du, bt + n), TS.SplatLoad(ct + n), y);
    }

    /// <summary>One state of W channels for one step: h ← exp(δ·A)·h + δu·B_t[n], stored back and returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV StateStep<TS, TV>(float* h, float* a2, TV dl, TV du, float* bn) where TS : ISimd<TV> where TV : struct
    {
        TV hn = TS.Fma(TS.Exp2NonPositive(TS.Mul(dl, TS.Load(a2))), TS.Load(h), TS.Mul(du, TS.SplatLoad(bn)));
        TS.Store(h, hn);
        return hn;
    }

    /// <summary>exp(δ·A)·h + δu·B_t[n] for one state of W channels held in a register.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV StateStep<TS, TV>(TV h, float* a2, TV dl, TV du, float* bn) where TS : ISimd<TV> where TV : struct =>
        TS.Fma(TS.Exp2NonPositive(TS.Mul(dl, TS.Load(a2))), h, TS.Mul(du, TS.SplatLoad(bn)));

    /// <summary>
    /// Whether <see cref="ProjectDelta"/> asks for the next segment's x_proj rows ahead, non-temporally. A block task
    /// streams its direction's rows (L·(R + 2N) floats, 590 KB at the 64×64 stage) past its u and y, which it reads at
    /// every step and again in every direction (L·W floats each, 256 KB at 16 lanes): in a 1 MB L2 the stream pushed u
    /// and y out. At 8 lanes, with half the u and y, the hint did not pay (docs/performance.md, "Issue 14, phase 17").
    /// </summary>
    private static bool RowsAheadNonTemporal<TS, TV>() where TS : ISimd<TV> where TV : struct => TS.Width == 16;

    /// <summary>δ_t of steps t0…t1−1 into dT[t] from the rows at proj.X + t·rowStride; where
    /// <see cref="RowsAheadNonTemporal"/> says so, it also asks for the rows one segment ahead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProjectDelta<TS, TV>(in Projection<TV> proj, int t0, int t1, int rowStride, float* dT)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, t = t0;
        for (; t + 3 < t1; t += 4)
        {
            // Past the direction's last row this asks for the next direction's first (or past the tensor: a hint, no fault).
            if (RowsAheadNonTemporal<TS, TV>()) CachePrefetch.NonTemporal(proj.X + (long)(t + ScanKernels.Segment) * rowStride, 4 * rowStride);
            Projection<TV>.Raw4<TS>(proj, proj.X + (long)t * rowStride, rowStride, out TV a0, out TV a1, out TV a2, out TV a3);
            float* d = dT + (long)t * w;
            TS.Store(d, TS.Softplus(a0));
            TS.Store(d + w, TS.Softplus(a1));
            TS.Store(d + 2 * w, TS.Softplus(a2));
            TS.Store(d + 3 * w, TS.Softplus(a3));
        }
        for (; t < t1; t++) TS.Store(dT + (long)t * w, TS.Softplus(Projection<TV>.Raw<TS>(proj, proj.X + (long)t * rowStride)));
    }
}

/// <summary>
/// The Δ projection of one block of one direction (spec §7.3 step 2): x_r of step t at X + t·rowStride, the weights
/// Wdt[k, c0…c0+W, ·] as WT (R, W), and the Δ bias per lane.
/// </summary>
internal readonly unsafe struct Projection<TV>(float* x, int r, float* wT, TV bias) where TV : struct
{
    public readonly float* X = x, WT = wT;
    public readonly int R = r;
    public readonly TV Bias = bias;

    /// <summary>Δ + bias = Σ_r WT[r]·x[r] + bias for the W lanes, before the softplus: one FMA chain, r ascending, as
    /// in <see cref="Raw4"/> (the backward recomputes δ and must get the forward's bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Raw<TS>(in Projection<TV> proj, float* x) where TS : ISimd<TV>
    {
        int w = TS.Width;
        TV acc = proj.Bias;
        for (int r = 0; r < proj.R; r++) acc = TS.Fma(TS.Load(proj.WT + r * w), TS.Splat(x[r]), acc);
        return acc;
    }

    /// <summary><see cref="Raw"/> of four consecutive steps (rows <paramref name="rowStride"/> apart from x0): each
    /// weight vector is loaded once for four FMAs, and the four chains are independent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Raw4<TS>(in Projection<TV> proj, float* x0, int rowStride, out TV a0, out TV a1, out TV a2, out TV a3)
        where TS : ISimd<TV>
    {
        int w = TS.Width, R = proj.R;
        float* x1 = x0 + rowStride, x2 = x1 + rowStride, x3 = x2 + rowStride;
        a0 = proj.Bias; a1 = a0; a2 = a0; a3 = a0;
        for (int r = 0; r < R; r++)
        {
            TV wr = TS.Load(proj.WT + r * w);
            a0 = TS.Fma(wr, TS.Splat(x0[r]), a0);
            a1 = TS.Fma(wr, TS.Splat(x1[r]), a1);
            a2 = TS.Fma(wr, TS.Splat(x2[r]), a2);
            a3 = TS.Fma(wr, TS.Splat(x3[r]), a3);
        }
    }
}
