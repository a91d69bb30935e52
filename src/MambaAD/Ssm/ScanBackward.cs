// Backward of the projected scan (spec §7.5; forward math and layout in ScanKernels.cs).
//
// With g = ∂ℓ/∂y read at pixel p = π_k(t), a_t = exp(δ_t·A), the adjoint λ_t = C_t·g_p + a_{t+1}·λ_{t+1} (per channel d,
// state n, reverse in time) and s_t = Σ_n λ_t·B_t[n]:
//     du_p   += D·g_p + δ_t·s_t                     (summed over the K directions that read p)
//     dδ_t    = Σ_n λ_t·A·a_t·h_{t−1} + u_p·s_t     dΔ_t = dδ_t·softplus'(Δ_t)   (softplus' = sigmoid, 1 above 20)
//     dbias  += dΔ_t      dWdt += dΔ_t·x_r,t      d x_r,t = Σ_d Wdt[d]·dΔ_t[d]
//     dA     += λ_t·a_t·h_{t−1}·δ_t                 dD += g_p·u_p
//     dB_t[n] = Σ_d λ_t·δ_t·u_p                     dC_t[n] = Σ_d g_p·h_t
//
// Memory: the forward stores h only at chunk boundaries (every ScanKernels.Chunk steps). Tasks are one batch element
// each (u is shared by the K directions, so du accumulates over k in the task's own buffer), except the elements that
// would leave workers idle in a last round: their directions are tasks with a du each (WholeElements). Per direction,
// chunks are walked in reverse; per chunk:
//   1. u and g rows of the chunk are gathered into scan order (their pixels are scattered over buffers larger than L2),
//      δ and softplus'(Δ) are recomputed from the step rows (no (Bt, K, d, L) δ is ever kept);
//   2. per block, Adjoint recomputes a_t and h_t of the chunk from its stored start state and walks back in time;
//      dB and dC accumulate per lane over the blocks and are summed across lanes once per chunk into the d rows
//      (BcGradsToRows);
//   3. dΔ of the chunk goes into dWdt (per lane) and d x_r (ProjectionGrads), du is added back at its pixels; the d
//      rows [d x_r | dB | dC] of each step go straight to its pixel's row of dXDbl.
// dA, dD, dbias and dWdt are written per batch element and summed by the caller: deterministic.

using System.Runtime.CompilerServices;

namespace MambaAD.Ssm;

internal static unsafe class ScanBackward
{
    public static void Run<TS, TV>(ScanParams p) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nb = ScanKernels.Blocks(p.Dg, w), dgp = nb * w;
        long work = (InOwnRows(p, dgp) ? 0 : 3L * p.L * dgp) + Scratch.Floats(p, nb, w);
        using var lanes = ParamLanes.Build(p, w);
        int whole = p.Whole;
        if (whole == p.Bt)
        {
            ScanWorkers.Run(p.Bt, work, (b, buf) => BatchTask<TS, TV>(p, lanes, b, buf));
            return;
        }
        // The last elements' directions are tasks of their own, each with its own du (p.DUK), summed afterwards in
        // direction order from +0: the sum BatchTask's one du makes, so the same bits.
        if (p.DUK == null || whole < 0 || whole > p.Bt) throw new InvalidOperationException("a split backward needs DUK (SplitFloats)");
        int K = p.K;
        long ld = (long)p.L * dgp;
        ScanWorkers.Run(whole + (p.Bt - whole) * K, work, (task, buf) =>
        {
            if (task < whole)
            {
                BatchTask<TS, TV>(p, lanes, task, buf);
                return;
            }
            int s = task - whole, b = whole + s / K;
            float* du = p.DUK + s * ld;
            new Span<float>(du, checked((int)ld)).Clear();
            long cl = (long)b * p.L * p.Dg;
            Direction<TS, TV>(p, lanes, b, s % K, p.U + cl, p.G + cl, du, new Scratch(p, nb, w, buf));
        });
        SumDirections<TS, TV>(p, whole, ld);
    }

    /// <summary>Floats of <see cref="ScanParams.DUK"/> for <paramref name="p"/>'s <see cref="ScanParams.Whole"/>: a du
    /// per direction of each element past it.</summary>
    public static long SplitFloats(in ScanParams p, int w) => (long)(p.Bt - p.Whole) * p.K * p.L * ScanKernels.Blocks(p.Dg, w) * w;

    /// <summary>
    /// Batch elements done as one task each (all K directions, one du): the largest multiple of the workers, so that
    /// those tasks fill whole rounds; the remainder's directions are tasks of their own. Batch 3 on 2 workers otherwise
    /// takes as long as batch 4, and batch 16 on 12 workers as long as 24 (docs/performance.md, "Issue 14, phase 24").
    /// Only in the tensors' own rows (Dg a multiple of the width: every MambaAD model); else every element is one task.
    /// </summary>
    internal static int WholeElements(in ScanParams p, int w, int workers) =>
        !InOwnRows(p, ScanKernels.Blocks(p.Dg, w) * w) || p.K == 1 || workers <= 1 ? p.Bt : p.Bt - p.Bt % workers;

    /// <summary>
    /// Row stride of the chunk's scan-order buffers: one vector more than dgp. A block walks its column of these rows,
    /// and at dgp = 1024 (a 4 KB stride) every row would map to the same L1 set (no measurable change on the Zen 5 VM).
    /// </summary>
    private static int ChunkRowStride(int dgp, int w) => dgp + w;

    /// <summary>
    /// Whether the whole-sequence rows of u, g and du are the tensors' own channels-last rows: with Dg a multiple of
    /// the width (every MambaAD model) they are, and the task copies nothing; otherwise it works in zero-padded copies.
    /// </summary>
    private static bool InOwnRows(in ScanParams p, int dgp) => p.Dg == dgp;

    /// <summary>A task's scratch after its whole-sequence rows: per block the λ carry, dA (N·W each), dD, dbias (W
    /// each) and dWdt (R·W); per chunk a_t, h_t (one more), dB and dC per lane (N·W per step each), and in scan order
    /// u, g, δ, softplus'(Δ), du and dΔ (rows of <see cref="ChunkRowStride"/> floats).</summary>
    private readonly struct Scratch
    {
        public readonly float* Lam, DAacc, DDacc, DBiasAcc, DWacc, ABuf, HBuf, DBacc, DCacc, UL, GL, DL, SgL, DuL, DdL;

        public Scratch(in ScanParams p, int nb, int w, float* start)
        {
            int nw = p.N * w, ch = p.Chunk;
            long lc = (long)ch * ChunkRowStride(nb * w, w);
            Lam = start; DAacc = Lam + (long)nb * nw; DDacc = DAacc + (long)nb * nw; DBiasAcc = DDacc + (long)nb * w;
            DWacc = DBiasAcc + (long)nb * w;
            ABuf = DWacc + (long)nb * p.R * w; HBuf = ABuf + (long)ch * nw; DBacc = HBuf + (long)(ch + 1) * nw;
            DCacc = DBacc + (long)ch * nw;
            UL = DCacc + (long)ch * nw; GL = UL + lc; DL = GL + lc; SgL = DL + lc; DuL = SgL + lc; DdL = DuL + lc;
        }

        public static long Floats(in ScanParams p, int nb, int w) =>
            (long)nb * (2L * p.N * w + 2L * w + (long)p.R * w) + (4L * p.Chunk + 1) * p.N * w + 6L * p.Chunk * ChunkRowStride(nb * w, w);
    }

    /// <summary>Batch element b, all K directions, du accumulated over them in one buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BatchTask<TS, TV>(in ScanParams p, in ParamLanes lanes, int b, float* buf)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, L = p.L, nb = ScanKernels.Blocks(p.Dg, w), dgp = nb * w;
        long ld = (long)L * dgp;
        long cl = (long)b * L * p.Dg;   // channels-last batch offset of u, g, du
        // Whole sequence, all blocks side by side (rows of dgp floats): u, g, du in pixel order (InOwnRows).
        bool own = InOwnRows(p, dgp);
        float* uT = own ? p.U + cl : buf, gT = own ? p.G + cl : uT + ld, duT = own ? p.dU + cl : gT + ld;
        var scratch = new Scratch(p, nb, w, own ? buf : duT + ld);
        for (int cb = 0; cb < nb && !own; cb++)
        {
            int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
            ScanRows.RowsIn<TS, TV>(p.U + cl + c0, L, p.Dg, nc, uT + c0, dgp);
            ScanRows.RowsIn<TS, TV>(p.G + cl + c0, L, p.Dg, nc, gT + c0, dgp);
        }
        new Span<float>(duT, checked((int)ld)).Clear();
        for (int k = 0; k < p.K; k++) Direction<TS, TV>(p, lanes, b, k, uT, gT, duT, scratch);
        for (int cb = 0; cb < nb && !own; cb++)
        {
            int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
            ScanRows.RowsOut<TS, TV>(duT + c0, L, p.Dg, nc, p.dU + cl + c0, dgp);
        }
    }

    /// <summary>Direction k of batch element b: its chunks walked back, du added into duT (rows of dgp floats, pixel
    /// order), its d rows written, its parameter partials stored. Not inlined: inside BatchTask's loop the whole-element
    /// path read 10–15 % slower (docs/performance.md, phase 24).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Direction<TS, TV>(in ScanParams p, in ParamLanes lanes, int b, int k, float* uT, float* gT, float* duT,
        in Scratch s) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, L = p.L, N = p.N, R = p.R, rs = R + 2 * N, nb = ScanKernels.Blocks(p.Dg, w), dgp = nb * w, ch = p.Chunk;
        int nw = N * w, rw = R * w, cs = ChunkRowStride(dgp, w);
        // Direction k's parameter lanes, blocks side by side (ParamLanes).
        float* aT = lanes.AOf(k), a2T = lanes.A2Of(k), dVec = lanes.DOf(k), biasVec = lanes.BiasOf(k), wT = lanes.WdtOf(k);
        new Span<float>(s.Lam, nb * nw).Clear();
        new Span<float>(s.DAacc, nb * nw).Clear();
        new Span<float>(s.DDacc, nb * w).Clear();
        new Span<float>(s.DBiasAcc, nb * w).Clear();
        new Span<float>(s.DWacc, nb * rw).Clear();
        float* xk = p.XS + ((long)b * p.K + k) * L * rs;
        long* path = p.Paths + (long)k * L;
        var dRows = new PixelRows(p.dXDbl + (long)b * L * p.K * rs + (long)k * rs, (long)p.K * rs);
        for (int c = p.NChunks - 1; c >= 0; c--)
        {
            int t0 = c * ch, len = Math.Min(ch, L - t0);
            float* xc = xk + (long)t0 * rs, cbk = xc + R, cck = cbk + N;
            ScanRows.GatherRows<TS, TV>(uT, s.UL, path + t0, len, dgp, cs);
            ScanRows.GatherRows<TS, TV>(gT, s.GL, path + t0, len, dgp, cs);
            new Span<float>(s.DuL, checked(len * cs)).Clear();
            ChunkDelta<TS, TV>(xc, rs, R, len, nb, cs, wT, biasVec, s.DL, s.SgL);
            new Span<float>(s.DBacc, len * nw).Clear();
            new Span<float>(s.DCacc, len * nw).Clear();
            for (int cb = 0; cb < nb; cb++)
            {
                float* hk = p.H + ((((long)b * p.K + k) * nb + cb) * p.NChunks + c) * nw;   // the chunk's start state
                // The block's next start state (the chunk before, in the walk back): the blocks' start states of one
                // chunk lie NChunks states apart in a buffer larger than the caches, and each block's first read
                // (the copy of its start state) otherwise waited on memory (docs/performance.md, phase 11).
                if (c > 0) CachePrefetch.ToL2(hk - nw, nw);
                Adjoint<TS, TV>(N, cb * w, cs, len, rs, cbk, cck, hk, s.UL, s.GL, s.DL, s.SgL, s.DuL, s.DdL, aT + (long)cb * nw,
                    a2T + (long)cb * nw, s.Lam + (long)cb * nw, s.DAacc + (long)cb * nw, dVec + (long)cb * w,
                    s.DDacc + (long)cb * w, s.DBiasAcc + (long)cb * w, s.ABuf, s.HBuf, s.DBacc, s.DCacc);
            }
            BcGradsToRows<TS, TV>(N, R, len, s.DBacc, s.DCacc, dRows, path + t0);
            ProjectionGrads<TS, TV>(xc, rs, R, len, nb, cs, s.DdL, wT, s.DWacc, dRows, path + t0);
            ScanRows.AddRowsAt<TS, TV>(s.DuL, cs, duT, path + t0, len, dgp);
        }
        for (int cb = 0; cb < nb; cb++) ScanRows.StoreParamPartials(p, b, k, cb, w, s.DDacc, s.DBiasAcc, s.DAacc, s.DWacc);
    }

    /// <summary>du of the split elements (whole…Bt−1, own rows): Σ_k du_k from +0 in direction order, in slices of
    /// rows spread over the workers.</summary>
    private static void SumDirections<TS, TV>(ScanParams p, int whole, long ld) where TS : ISimd<TV> where TV : struct
    {
        const int SliceFloats = 1 << 14;
        int slices = (int)((ld + SliceFloats - 1) / SliceFloats), K = p.K;
        ScanWorkers.Run((p.Bt - whole) * slices, 0, (task, _) =>
        {
            int e = task / slices;
            long from = (long)(task % slices) * SliceFloats, to = Math.Min(ld, from + SliceFloats);
            float* src = p.DUK + (long)e * K * ld, dst = p.dU + (long)(whole + e) * ld;
            for (long i = from; i < to; i += TS.Width)
            {
                TV acc = TS.Splat(0f);
                for (int k = 0; k < K; k++) acc = TS.Add(acc, TS.Load(src + k * ld + i));
                TS.Store(dst + i, acc);
            }
        });
    }

    /// <summary>δ = softplus(Δ) and softplus'(Δ) of the chunk's len steps, scan order, every block: (len, cs) each. Δ
    /// with the forward's arithmetic (one FMA chain per step, <see cref="Projection{TV}.Raw4"/>), so the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ChunkDelta<TS, TV>(float* xc, int rs, int R, int len, int nb, int cs, float* wT, float* biasVec,
        float* dL, float* sgL) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        for (int cb = 0; cb < nb; cb++)
        {
            var proj = new Projection<TV>(xc, R, wT + (long)cb * R * w, TS.Load(biasVec + (long)cb * w));
            float* dc = dL + cb * w, sc = sgL + cb * w;
            int i = 0;
            for (; i + 3 < len; i += 4)
            {
                Projection<TV>.Raw4<TS>(proj, xc + (long)i * rs, rs, out TV a0, out TV a1, out TV a2, out TV a3);
                DeltaAndGrad<TS, TV>(a0, dc + (long)i * cs, sc + (long)i * cs);
                DeltaAndGrad<TS, TV>(a1, dc + (long)(i + 1) * cs, sc + (long)(i + 1) * cs);
                DeltaAndGrad<TS, TV>(a2, dc + (long)(i + 2) * cs, sc + (long)(i + 2) * cs);
                DeltaAndGrad<TS, TV>(a3, dc + (long)(i + 3) * cs, sc + (long)(i + 3) * cs);
            }
            for (; i < len; i++) DeltaAndGrad<TS, TV>(Projection<TV>.Raw<TS>(proj, xc + (long)i * rs), dc + (long)i * cs, sc + (long)i * cs);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DeltaAndGrad<TS, TV>(TV raw, float* d, float* sg) where TS : ISimd<TV> where TV : struct
    {
        TS.Store(d, TS.SoftplusWithGrad(raw, out TV grad));
        TS.Store(sg, grad);
    }

    /// <summary>
    /// The adjoint over the len steps of one chunk (chunk-local scan order) of one block: recomputes a_t and h_t from the
    /// chunk's stored start state into aBuf / hBuf (hBuf[0] = the state before the chunk), then walks back in time. lam
    /// carries a_{t+1}·λ_{t+1} between steps and chunks; dA, dD, dbias accumulate per lane; du and dΔ are written per step;
    /// dB (adjoint) and dC (recompute) accumulate per lane into dBacc / dCacc, summed over the blocks in block order. The two loops are
    /// methods of their own (and N = 16 has its own written-out adjoint): in one method the JIT ran out of inlining
    /// budget and called the vector helpers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Adjoint<TS, TV>(int N, int c0, int dgp, int len, int bcStride,
        float* bk, float* ck, float* hStart, float* uL, float* gL, float* dL, float* sgL, float* duL, float* ddL,
        float* aT, float* a2T, float* lam, float* dA, float* dVec, float* dDacc, float* dBiasAcc,
        float* aBuf, float* hBuf, float* dBacc, float* dCacc)
        where TS : ISimd<TV> where TV : struct
    {
        int nw = N * TS.Width;
        Buffer.MemoryCopy(hStart, hBuf, nw * 4L, nw * 4L);
        Recompute<TS, TV>(N, c0, dgp, len, bcStride, bk, uL, gL, dL, a2T, aBuf, hBuf, dCacc);
        var blk = new AdjointBlock(c0, dgp, len, bcStride, bk, ck, uL, gL, dL, sgL, duL, ddL, aT, lam, dA, dVec, dDacc,
            dBiasAcc, aBuf, hBuf, dBacc);
        if (N == 16 && TS.Width == 16) AdjointLoop16Carried<TS, TV>(blk);
        else if (N == 16) AdjointLoop16<TS, TV>(blk);
        else AdjointLoop<TS, TV>(N, blk);
    }

    /// <summary>
    /// a_t and h_t of the chunk's steps from hBuf[0]: aBuf[i] = a_i, hBuf[i+1] = h_i (chunk-local i); and dC, which needs
    /// h_t and g only. dC is summed here rather than in the adjoint because the adjoint is held by its loads and stores
    /// and the recompute by its arithmetic (the exponential): the same sums in the same block order, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Recompute<TS, TV>(int N, int c0, int dgp, int len, int bcStride, float* bk, float* uL, float* gL,
        float* dL, float* a2T, float* aBuf, float* hBuf, float* dCacc) where TS : ISimd<TV> where TV : struct
    {
        int nw = N * TS.Width;
        for (int i = 0; i < len; i++)
        {
            long e = (long)i * dgp + c0;
            TV dl = TS.Load(dL + e), g = TS.Load(gL + e);
            TV du = TS.Mul(dl, TS.Load(uL + e));
            float* bt = bk + (long)i * bcStride, hp = hBuf + (long)i * nw, hn = hp + nw, ai = aBuf + (long)i * nw;
            float* dc = dCacc + (long)i * nw;
            if (N == 16) Update16<TS, TV>(hp, hn, ai, a2T, dl, du, bt, g, dc);
            else for (int n = 0; n < N; n++) Update<TS, TV>(n, hp, hn, ai, a2T, dl, du, bt, g, dc);
        }
    }

    /// <summary>Pointers and sizes of one block's chunk adjoint (see <see cref="Adjoint"/>).</summary>
    private readonly struct AdjointBlock(int c0, int dgp, int len, int bcStride, float* bk, float* ck, float* uL,
        float* gL, float* dL, float* sgL, float* duL, float* ddL, float* aT, float* lam, float* dA, float* dVec, float* dDacc,
        float* dBiasAcc, float* aBuf, float* hBuf, float* dBacc)
    {
        public readonly int C0 = c0, Dgp = dgp, Len = len, BcStride = bcStride;
        public readonly float* Bk = bk, Ck = ck, UL = uL, GL = gL, DL = dL, SgL = sgL, DuL = duL, DdL = ddL, AT = aT, Lam = lam;
        public readonly float* DA = dA, DVec = dVec, DDacc = dDacc, DBiasAcc = dBiasAcc, ABuf = aBuf, HBuf = hBuf;
        public readonly float* DBacc = dBacc;
    }

    /// <summary>The reverse-time adjoint for any N (the reference of <see cref="AdjointLoop16"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AdjointLoop<TS, TV>(int N, in AdjointBlock b) where TS : ISimd<TV> where TV : struct
    {
        int nw = N * TS.Width;
        TV dv0 = TS.Load(b.DVec), dDv = TS.Load(b.DDacc), dBiasV = TS.Load(b.DBiasAcc);
        for (int i = b.Len - 1; i >= 0; i--)
        {
            long e = (long)i * b.Dgp + b.C0;
            TV dl = TS.Load(b.DL + e), uv = TS.Load(b.UL + e), g = TS.Load(b.GL + e);
            TV s = TS.Splat(0f), dds = TS.Splat(0f);
            var st = new AdjointStep<TV>(b.ABuf + (long)i * nw, b.HBuf + (long)i * nw, b.Lam, b.AT, b.DA,
                b.DBacc + (long)i * nw, b.Bk + (long)i * b.BcStride, b.Ck + (long)i * b.BcStride, g, dl, TS.Mul(dl, uv));
            for (int n = 0; n < N; n++) AdjointState<TS, TV>(n, st, ref s, ref dds);
            StepGrads<TS, TV>(b, e, dl, uv, g, s, dds, dv0, ref dDv, ref dBiasV);
        }
        TS.Store(b.DDacc, dDv);
        TS.Store(b.DBiasAcc, dBiasV);
    }

    /// <summary><see cref="AdjointLoop"/> for N = 16, written out (constant offsets; even and odd states sum apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AdjointLoop16<TS, TV>(in AdjointBlock b) where TS : ISimd<TV> where TV : struct
    {
        int nw = 16 * TS.Width;
        TV dv0 = TS.Load(b.DVec), dDv = TS.Load(b.DDacc), dBiasV = TS.Load(b.DBiasAcc);
        for (int i = b.Len - 1; i >= 0; i--)
        {
            long e = (long)i * b.Dgp + b.C0;
            TV dl = TS.Load(b.DL + e), uv = TS.Load(b.UL + e), g = TS.Load(b.GL + e);
            TV s = TS.Splat(0f), dds = s, s1 = s, dds1 = s;
            var st = new AdjointStep<TV>(b.ABuf + (long)i * nw, b.HBuf + (long)i * nw, b.Lam, b.AT, b.DA,
                b.DBacc + (long)i * nw, b.Bk + (long)i * b.BcStride, b.Ck + (long)i * b.BcStride, g, dl, TS.Mul(dl, uv));
            AdjointState<TS, TV>(0, st, ref s, ref dds); AdjointState<TS, TV>(1, st, ref s1, ref dds1);
            AdjointState<TS, TV>(2, st, ref s, ref dds); AdjointState<TS, TV>(3, st, ref s1, ref dds1);
            AdjointState<TS, TV>(4, st, ref s, ref dds); AdjointState<TS, TV>(5, st, ref s1, ref dds1);
            AdjointState<TS, TV>(6, st, ref s, ref dds); AdjointState<TS, TV>(7, st, ref s1, ref dds1);
            AdjointState<TS, TV>(8, st, ref s, ref dds); AdjointState<TS, TV>(9, st, ref s1, ref dds1);
            AdjointState<TS, TV>(10, st, ref s, ref dds); AdjointState<TS, TV>(11, st, ref s1, ref dds1);
            AdjointState<TS, TV>(12, st, ref s, ref dds); AdjointState<TS, TV>(13, st, ref s1, ref dds1);
            AdjointState<TS, TV>(14, st, ref s, ref dds); AdjointState<TS, TV>(15, st, ref s1, ref dds1);
            StepGrads<TS, TV>(b, e, dl, uv, g, TS.Add(s, s1), TS.Add(dds, dds1), dv0, ref dDv, ref dBiasV);
        }
        TS.Store(b.DDacc, dDv);
        TS.Store(b.DBiasAcc, dBiasV);
    }

    /// <summary>
    /// <see cref="AdjointLoop16"/> with the 16 states' carries a·λ in registers across the chunk's steps: one load and
    /// one store fewer per state and step, the same bits. Only at 16 lanes: AVX-512's 32 registers hold the carries
    /// beside the step's sums; AVX2's 16 do not, and the spilled version was no faster (docs/performance.md, phase 26).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AdjointLoop16Carried<TS, TV>(in AdjointBlock b) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nw = 16 * w;
        float* lam = b.Lam;
        TV c0 = TS.Load(lam), c1 = TS.Load(lam + w), c2 = TS.Load(lam + 2 * w), c3 = TS.Load(lam + 3 * w);
        TV c4 = TS.Load(lam + 4 * w), c5 = TS.Load(lam + 5 * w), c6 = TS.Load(lam + 6 * w), c7 = TS.Load(lam + 7 * w);
        TV c8 = TS.Load(lam + 8 * w), c9 = TS.Load(lam + 9 * w), c10 = TS.Load(lam + 10 * w), c11 = TS.Load(lam + 11 * w);
        TV c12 = TS.Load(lam + 12 * w), c13 = TS.Load(lam + 13 * w), c14 = TS.Load(lam + 14 * w), c15 = TS.Load(lam + 15 * w);
        TV dv0 = TS.Load(b.DVec), dDv = TS.Load(b.DDacc), dBiasV = TS.Load(b.DBiasAcc);
        for (int i = b.Len - 1; i >= 0; i--)
        {
            long e = (long)i * b.Dgp + b.C0;
            TV dl = TS.Load(b.DL + e), uv = TS.Load(b.UL + e), g = TS.Load(b.GL + e);
            TV s = TS.Splat(0f), dds = s, s1 = s, dds1 = s;
            var st = new AdjointStep<TV>(b.ABuf + (long)i * nw, b.HBuf + (long)i * nw, b.Lam, b.AT, b.DA,
                b.DBacc + (long)i * nw, b.Bk + (long)i * b.BcStride, b.Ck + (long)i * b.BcStride, g, dl, TS.Mul(dl, uv));
            AdjointStateCarried<TS, TV>(0, st, ref s, ref dds, ref c0); AdjointStateCarried<TS, TV>(1, st, ref s1, ref dds1, ref c1);
            AdjointStateCarried<TS, TV>(2, st, ref s, ref dds, ref c2); AdjointStateCarried<TS, TV>(3, st, ref s1, ref dds1, ref c3);
            AdjointStateCarried<TS, TV>(4, st, ref s, ref dds, ref c4); AdjointStateCarried<TS, TV>(5, st, ref s1, ref dds1, ref c5);
            AdjointStateCarried<TS, TV>(6, st, ref s, ref dds, ref c6); AdjointStateCarried<TS, TV>(7, st, ref s1, ref dds1, ref c7);
            AdjointStateCarried<TS, TV>(8, st, ref s, ref dds, ref c8); AdjointStateCarried<TS, TV>(9, st, ref s1, ref dds1, ref c9);
            AdjointStateCarried<TS, TV>(10, st, ref s, ref dds, ref c10); AdjointStateCarried<TS, TV>(11, st, ref s1, ref dds1, ref c11);
            AdjointStateCarried<TS, TV>(12, st, ref s, ref dds, ref c12); AdjointStateCarried<TS, TV>(13, st, ref s1, ref dds1, ref c13);
            AdjointStateCarried<TS, TV>(14, st, ref s, ref dds, ref c14); AdjointStateCarried<TS, TV>(15, st, ref s1, ref dds1, ref c15);
            StepGrads<TS, TV>(b, e, dl, uv, g, TS.Add(s, s1), TS.Add(dds, dds1), dv0, ref dDv, ref dBiasV);
        }
        TS.Store(lam, c0); TS.Store(lam + w, c1); TS.Store(lam + 2 * w, c2); TS.Store(lam + 3 * w, c3);
        TS.Store(lam + 4 * w, c4); TS.Store(lam + 5 * w, c5); TS.Store(lam + 6 * w, c6); TS.Store(lam + 7 * w, c7);
        TS.Store(lam + 8 * w, c8); TS.Store(lam + 9 * w, c9); TS.Store(lam + 10 * w, c10); TS.Store(lam + 11 * w, c11);
        TS.Store(lam + 12 * w, c12); TS.Store(lam + 13 * w, c13); TS.Store(lam + 14 * w, c14); TS.Store(lam + 15 * w, c15);
        TS.Store(b.DDacc, dDv);
        TS.Store(b.DBiasAcc, dBiasV);
    }

    /// <summary>One step's du (added), dΔ = (u·s + dds)·softplus'(Δ), and the dD, dbias lane sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StepGrads<TS, TV>(in AdjointBlock b, long e, TV dl, TV uv, TV g, TV s, TV dds, TV dv0, ref TV dDv, ref TV dBiasV)
        where TS : ISimd<TV> where TV : struct
    {
        TS.Store(b.DuL + e, TS.Add(TS.Load(b.DuL + e), TS.Fma(dv0, g, TS.Mul(dl, s))));
        TV draw = TS.Mul(TS.Fma(uv, s, dds), TS.Load(b.SgL + e));
        TS.Store(b.DdL + e, draw);
        dDv = TS.Fma(g, uv, dDv);
        dBiasV = TS.Add(dBiasV, draw);
    }

    /// <summary>
    /// State n of one recompute step: a = exp(δ·A[n]) (stored in aOut for the adjoint), h_out[n] = a·h_in[n] + δu·B[n];
    /// dC += g·h_out (per lane).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update<TS, TV>(int n, float* hIn, float* hOut, float* aOut, float* a2T, TV dl, TV du, float* bt, TV g, float* dc)
        where TS : ISimd<TV> where TV : struct
    {
        int o = n * TS.Width;
        TV a = TS.Exp2NonPositive(TS.Mul(dl, TS.Load(a2T + o)));
        TS.Store(aOut + o, a);
        TV h = TS.Fma(a, TS.Load(hIn + o), TS.Mul(du, TS.SplatLoad(bt + n)));
        TS.Store(hOut + o, h);
        TS.Store(dc + o, TS.Fma(g, h, TS.Load(dc + o)));
    }

    /// <summary><see cref="Update"/> for the 16 states, written out so that every offset is a constant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update16<TS, TV>(float* hIn, float* hOut, float* aOut, float* a2T, TV dl, TV du, float* bt, TV g, float* dc)
        where TS : ISimd<TV> where TV : struct
    {
        Update<TS, TV>(0, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(1, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(2, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(3, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(4, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(5, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(6, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(7, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(8, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(9, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(10, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(11, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(12, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(13, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
        Update<TS, TV>(14, hIn, hOut, aOut, a2T, dl, du, bt, g, dc); Update<TS, TV>(15, hIn, hOut, aOut, a2T, dl, du, bt, g, dc);
    }

    /// <summary>The per-step operands of <see cref="AdjointState"/> (one chunk row of a block).</summary>
    private readonly struct AdjointStep<TV>(float* ai, float* hp, float* lam, float* aT, float* dA, float* dBi,
        float* bt, float* ct, TV g, TV dl, TV dlu) where TV : struct
    {
        public readonly float* Ai = ai, Hp = hp, Lam = lam, AT = aT, DA = dA, DBi = dBi, Bt = bt, Ct = ct;
        public readonly TV G = g, Dl = dl, Dlu = dlu;
    }

    /// <summary>
    /// State n of one adjoint step: λ = C[n]·g + a_{t+1}λ_{t+1}; s += λ·B[n]; with q = λ·a·h_{t−1}: dds += q·A[n],
    /// dA += q·δ; dB += λ·δu (per lane); the carry becomes a·λ. (dC is the recompute's.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AdjointState<TS, TV>(int n, in AdjointStep<TV> p, ref TV s, ref TV dds) where TS : ISimd<TV> where TV : struct
    {
        TV carry = TS.Load(p.Lam + n * TS.Width);
        AdjointStateCarried<TS, TV>(n, p, ref s, ref dds, ref carry);
        TS.Store(p.Lam + n * TS.Width, carry);
    }

    /// <summary><see cref="AdjointState"/> with the carry a_{t+1}·λ_{t+1} in and out of <paramref name="carry"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AdjointStateCarried<TS, TV>(int n, in AdjointStep<TV> p, ref TV s, ref TV dds, ref TV carry)
        where TS : ISimd<TV> where TV : struct
    {
        int o = n * TS.Width;
        TV a = TS.Load(p.Ai + o);
        TV l = TS.Fma(TS.SplatLoad(p.Ct + n), p.G, carry);
        s = TS.Fma(l, TS.SplatLoad(p.Bt + n), s);
        TV q = TS.Mul(l, TS.Mul(a, TS.Load(p.Hp + o)));
        dds = TS.Fma(q, TS.Load(p.AT + o), dds);
        TS.Store(p.DA + o, TS.Fma(q, p.Dl, TS.Load(p.DA + o)));
        TS.Store(p.DBi + o, TS.Fma(l, p.Dlu, TS.Load(p.DBi + o)));
        carry = TS.Mul(a, l);
    }

    /// <summary>Direction k's rows of one batch element's dXDbl (Bt, L, K, R + 2N): pixel p's row starts K·(R + 2N)·p floats on from pixel 0's.</summary>
    private readonly struct PixelRows(float* rowOfPixel0, long stride)
    {
        public float* Of(long pixel) => rowOfPixel0 + pixel * stride;
    }

    /// <summary>dB and dC of a chunk's len steps: one horizontal sum per (step, state) into the d rows' B and C parts
    /// (for N = 16 sixteen at a time, <see cref="ISimd{TV}.Sums16"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BcGradsToRows<TS, TV>(int N, int R, int len, float* dBacc, float* dCacc, in PixelRows dRows, long* path)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nw = N * w;
        for (int i = 0; i < len; i++)
        {
            float* row = dRows.Of(path[i]) + R;
            if (N == 16)
            {
                TS.Sums16(dBacc + (long)i * nw, row);
                TS.Sums16(dCacc + (long)i * nw, row + N);
                continue;
            }
            for (int n = 0; n < N; n++)
            {
                row[n] = TS.Sum(TS.Load(dBacc + (long)i * nw + n * w));
                row[N + n] = TS.Sum(TS.Load(dCacc + (long)i * nw + n * w));
            }
        }
    }

    /// <summary>dΔ of the chunk (ddL, scan order) → dWdt per lane (Σ_t dΔ·x_r) and d x_r per step (Σ_d Wdt·dΔ).
    /// Both sums keep eight r in registers (<see cref="Wdt8"/>, <see cref="Xr8"/>), then four (R = 4 at the 64×64
    /// stage), then one: each r's sum is one FMA chain, and independent chains side by side keep the FMA units busy
    /// where one chain waits on each FMA. Every sum runs in the order it always did (steps ascending, blocks
    /// ascending), so the bits are those of the one-r-at-a-time loops.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProjectionGrads<TS, TV>(float* xc, int rs, int R, int len, int nb, int cs, float* ddL,
        float* wT, float* dWacc, in PixelRows dRows, long* path) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, rw = R * w;
        for (int cb = 0; cb < nb; cb++)
        {
            float* dd = ddL + cb * w, dwb = dWacc + (long)cb * rw;
            int r = 0;
            for (; r + 7 < R; r += 8) Wdt8<TS, TV>(xc + r, rs, len, dd, cs, dwb + r * w);
            for (; r + 3 < R; r += 4) Wdt4<TS, TV>(xc + r, rs, len, dd, cs, dwb + r * w);
            for (; r < R; r++)
            {
                TV acc = TS.Load(dwb + r * w);
                for (int i = 0; i < len; i++) acc = TS.Fma(TS.Load(dd + (long)i * cs), TS.Splat(xc[(long)i * rs + r]), acc);
                TS.Store(dwb + r * w, acc);
            }
        }
        for (int i = 0; i < len; i++)
        {
            float* dd = ddL + (long)i * cs, drow = dRows.Of(path[i]);
            int r = 0;
            for (; r + 7 < R; r += 8) Xr8<TS, TV>(dd, nb, wT + r * w, rw, drow + r);
            for (; r + 3 < R; r += 4) Xr4<TS, TV>(dd, nb, wT + r * w, rw, drow + r);
            for (; r < R; r++)
            {
                TV acc = TS.Splat(0f);
                for (int cb = 0; cb < nb; cb++) acc = TS.Fma(TS.Load(dd + cb * w), TS.Load(wT + (long)cb * rw + r * w), acc);
                drow[r] = TS.Sum(acc);
            }
        }
    }

    /// <summary>dWdt[r…r+7] of one block += Σ_i dΔ_i·x_r,i over the chunk's steps (x at x + i·rs, dΔ at dd + i·cs).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Wdt8<TS, TV>(float* x, int rs, int len, float* dd, int cs, float* dw) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        TV a0 = TS.Load(dw), a1 = TS.Load(dw + w), a2 = TS.Load(dw + 2 * w), a3 = TS.Load(dw + 3 * w);
        TV a4 = TS.Load(dw + 4 * w), a5 = TS.Load(dw + 5 * w), a6 = TS.Load(dw + 6 * w), a7 = TS.Load(dw + 7 * w);
        for (int i = 0; i < len; i++)
        {
            TV d = TS.Load(dd + (long)i * cs);
            float* xi = x + (long)i * rs;
            a0 = TS.Fma(d, TS.Splat(xi[0]), a0); a1 = TS.Fma(d, TS.Splat(xi[1]), a1);
            a2 = TS.Fma(d, TS.Splat(xi[2]), a2); a3 = TS.Fma(d, TS.Splat(xi[3]), a3);
            a4 = TS.Fma(d, TS.Splat(xi[4]), a4); a5 = TS.Fma(d, TS.Splat(xi[5]), a5);
            a6 = TS.Fma(d, TS.Splat(xi[6]), a6); a7 = TS.Fma(d, TS.Splat(xi[7]), a7);
        }
        TS.Store(dw, a0); TS.Store(dw + w, a1); TS.Store(dw + 2 * w, a2); TS.Store(dw + 3 * w, a3);
        TS.Store(dw + 4 * w, a4); TS.Store(dw + 5 * w, a5); TS.Store(dw + 6 * w, a6); TS.Store(dw + 7 * w, a7);
    }

    /// <summary><see cref="Wdt8"/> for four r.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Wdt4<TS, TV>(float* x, int rs, int len, float* dd, int cs, float* dw) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        TV a0 = TS.Load(dw), a1 = TS.Load(dw + w), a2 = TS.Load(dw + 2 * w), a3 = TS.Load(dw + 3 * w);
        for (int i = 0; i < len; i++)
        {
            TV d = TS.Load(dd + (long)i * cs);
            float* xi = x + (long)i * rs;
            a0 = TS.Fma(d, TS.Splat(xi[0]), a0); a1 = TS.Fma(d, TS.Splat(xi[1]), a1);
            a2 = TS.Fma(d, TS.Splat(xi[2]), a2); a3 = TS.Fma(d, TS.Splat(xi[3]), a3);
        }
        TS.Store(dw, a0); TS.Store(dw + w, a1); TS.Store(dw + 2 * w, a2); TS.Store(dw + 3 * w, a3);
    }

    /// <summary><see cref="Xr8"/> for four r.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Xr4<TS, TV>(float* dd, int nb, float* wT, int rw, float* drow) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        TV a0 = TS.Splat(0f), a1 = a0, a2 = a0, a3 = a0;
        for (int cb = 0; cb < nb; cb++)
        {
            TV d = TS.Load(dd + cb * w);
            float* wb = wT + (long)cb * rw;
            a0 = TS.Fma(d, TS.Load(wb), a0); a1 = TS.Fma(d, TS.Load(wb + w), a1);
            a2 = TS.Fma(d, TS.Load(wb + 2 * w), a2); a3 = TS.Fma(d, TS.Load(wb + 3 * w), a3);
        }
        drow[0] = TS.Sum(a0); drow[1] = TS.Sum(a1); drow[2] = TS.Sum(a2); drow[3] = TS.Sum(a3);
    }

    /// <summary>d x_r[r…r+7] of one step = Σ_cb Wdt[cb, r]·dΔ[cb] over the blocks (Wdt of block cb at wT + cb·rw),
    /// lanes summed once at the end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Xr8<TS, TV>(float* dd, int nb, float* wT, int rw, float* drow) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        TV a0 = TS.Splat(0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int cb = 0; cb < nb; cb++)
        {
            TV d = TS.Load(dd + cb * w);
            float* wb = wT + (long)cb * rw;
            a0 = TS.Fma(d, TS.Load(wb), a0); a1 = TS.Fma(d, TS.Load(wb + w), a1);
            a2 = TS.Fma(d, TS.Load(wb + 2 * w), a2); a3 = TS.Fma(d, TS.Load(wb + 3 * w), a3);
            a4 = TS.Fma(d, TS.Load(wb + 4 * w), a4); a5 = TS.Fma(d, TS.Load(wb + 5 * w), a5);
            a6 = TS.Fma(d, TS.Load(wb + 6 * w), a6); a7 = TS.Fma(d, TS.Load(wb + 7 * w), a7);
        }
        drow[0] = TS.Sum(a0); drow[1] = TS.Sum(a1); drow[2] = TS.Sum(a2); drow[3] = TS.Sum(a3);
        drow[4] = TS.Sum(a4); drow[5] = TS.Sum(a5); drow[6] = TS.Sum(a6); drow[7] = TS.Sum(a7);
    }
}
