// Selective scan kernels over raw float32 memory (spec §7.3 forward, §7.5 backward, §8.3 merge).
//
// Legend: Bt batch, K directions (= groups G of selective_scan_ref), Dg channels per direction (d_inner),
// N states, L steps, W vector width (16 for AVX-512, 8 for AVX2, 1 scalar), cb a block of W channels.
//
// Forward, per direction k, channel d, state n (h_{-1} = 0):
//     δ_t      = softplus(Δ_t + bias)                      (linear above 20, like torch; optional)
//     a_t      = exp(δ_t·A[d,n])                           zero-order hold for A
//     h_t[n]   = a_t·h_{t−1}[n] + δ_t·B_t[n]·u_t            Euler for B (B̄ = δB), as mamba's kernel
//     y_t      = Σ_n C_t[n]·h_t[n] + D·u_t
// Backward (§7.5) with λ_t = C_t·g_t + a_{t+1}·λ_{t+1} (per d, n), s_t = Σ_n λ_t B_t:
//     du_t = D g_t + δ_t s_t                dδ_t = Σ_n λ_t A a_t h_{t−1} + u_t s_t
//     dΔ_t = dδ_t·softplus'(Δ_t + bias)     dbias = Σ_{b,t} dΔ_t
//     dA   = Σ_{b,t} λ_t a_t h_{t−1} δ_t    dB_t[n] = Σ_{d∈k} λ_t δ_t u_t    dC_t[n] = Σ_{d∈k} g_t h_t    dD = Σ g_t u_t
//
// Layout and vectorisation. SIMD runs over W channels of one direction, not over the N states: B_t and C_t are
// shared by the channels of a direction, so they are scalar broadcasts, y_t for W channels is a plain vector (no
// horizontal sum per step), and the N states of W channels sit in N vectors. u, δ, g are (…, channel, L) in memory,
// so each task first transposes its W-channel block into a (L, W) buffer (one pass, cheap next to N exps per
// element; two 8-lane gathers per step at AVX-512 width). B and C arrive transposed to (…, L, N) so a step reads N
// consecutive floats. Δ gets its bias and softplus in that pass, vectorised over the (L, W) buffer, so the recurrence
// reads δ directly. exp(δA) is computed as 2^(δ·A·log2 e) with vreduceps/vscalefps and a degree-5 minimax polynomial.
// Measured (bench -- scan --what fwd,overstates, 64×64 stage, batch 8/16, before the exp2 and projection work): SIMD
// over channels 8.5–10 CPU-ns per step, SIMD over the 16 states of one channel (ForwardOverStates, kept for that
// comparison) 14–16 CPU-ns per step.
//
// Projected mode (ScanAndMergeProjected, what SS2D calls; channels-last u and y): the caller gathers xDbl into
// scan-ordered rows [x_r | B | C] (Bt, K, L, R + 2N). Per 64-step segment the task first computes δ = softplus(Wdt·x_r
// + bias) of every step (four steps at a time: independent chains), then runs the recurrence, which reads B and C from
// the rows in place and u / adds y at pixel π(t) in the task's L2-resident (L, W) buffers. Computing δ inside each
// step cost 1.5 ns per step more: its ~30-deep softplus chain stalled the step's 16 states. No (Bt, K, d, L) delta
// exists in the forward or in the backward (BackwardProjectedTask). Measured single-threaded at the 64×64 stage,
// batch 8 (bench -- scan --what fused,proj --threads 1): 7.9 CPU-ns per step for the delta-taking op at the start of
// this work, 4.9 now; the JIT must keep the polynomial's constants in registers, hence Recurrence is a method of its
// own (inside the task's loop they were reloaded for every state: 2× slower).
//
// Direction paths (ScanAndMerge): step t of direction k reads pixel p = π_k[t] of u, Δ, B_k, C_k and adds its
// output into pixel p of one shared (Bt, Dg, L) output; the gather and the scatter-sum of §8.2–8.3 cost nothing
// beyond an indexed load (measured: fused 7–10 CPU-ns per step against 42–47 for gather → Scan → scatter-add).
// Forward tasks are (batch, channel block) and loop over all K, so each task owns its output rows: no races,
// deterministic. Without paths (Scan), p = t and tasks are (batch, direction, channel block).
//
// Backward memory: forward stores h only at chunk boundaries (every Chunk = 256 steps): (Bt, K, blocks, L/Chunk, N, W).
// Backward walks chunks in reverse; per chunk it recomputes the states of each channel block once to get
// checkpoints every SubChunk = 8 steps, then walks the sub-chunks in reverse, recomputing a_t and h_t of 8 steps into
// an L1-sized buffer and running the adjoint. dB and dC need sums over all channels of a direction: they accumulate
// per lane over the blocks of a sub-chunk and are reduced horizontally once per sub-chunk. With paths, a chunk's rows
// are first gathered into scan order (pixels are scattered over buffers larger than L2) and scattered back after.
// Backward tasks are (batch) with paths (u is shared by the K directions, so du accumulates over k) and (batch,
// direction) without; dA, dD, dbias (and dWdt) are written per batch and summed by the caller (deterministic).
//
// Assumes contiguous float32 CPU tensors and int64 paths; SelectiveScanCpu falls back to the reference otherwise.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MambaAD.Ssm;

/// <summary>Sizes, flags and pointers of one scan call (mamba's SSMParamsBase idea: one plain struct, not 20 arguments).</summary>
internal unsafe struct ScanParams
{
    public int Bt, K, Dg, N, L, Chunk;
    /// <summary>u, y (and du, g) are (Bt, Dg, L) shared by the K directions, and outputs add over k (ScanAndMerge).</summary>
    public bool SharedU;
    public bool DeltaSoftplus;
    public float* U, Delta, A, BT, CT, D, Bias, Y;
    /// <summary>Chunk-boundary states (Bt, K, blocks, NChunks, N, W), or null when no backward will follow.</summary>
    public float* H;
    /// <summary>
    /// Projected mode (ScanAndMergeProjected, forward only): instead of Delta, BT and CT, rows (Bt, K, L, R + 2N) in
    /// <b>scan order</b> holding [x_r | B | C] of each step, and the Δ projection weights Wdt (K, Dg, R):
    /// Δ_t = Wdt[k] · x_r,t; u and y are then channels-last, (Bt, L, Dg). Null otherwise.
    /// </summary>
    public float* XS, Wdt;
    public int R;
    /// <summary>(K, L) pixel read at each step, or null for the identity.</summary>
    public long* Paths;
    // Backward only.
    public float* G, dU, dDelta, dA, dBT, dCT, dD, dBias;
    /// <summary>Projected backward: d rows (Bt, K, L, R + 2N) in scan order, and per-batch dWdt partials (Bt, K, Dg, R).</summary>
    public float* dXS, dWdt;

    public readonly int NChunks => (L + Chunk - 1) / Chunk;
    public readonly long USize => SharedU ? (long)Dg * L : (long)K * Dg * L;       // per batch
    public readonly long UDirStride => SharedU ? 0 : (long)Dg * L;
}

internal static unsafe class ScanKernels
{
    /// <summary>
    /// Steps between stored states. The backward recomputes each chunk once from its start state whatever its length
    /// (in sub-chunks, below), so a longer chunk costs no compute, only a larger per-thread scratch (6·Chunk·d
    /// floats); 256 instead of 64 cut the stored states 4× (≈ 350 MB of a batch-16 training step at 256²).
    /// </summary>
    public const int DefaultChunk = 256;

    /// <summary>
    /// Backward recomputes a chunk in sub-chunks of this many steps, so that a_t, h_t and the per-lane dB/dC
    /// accumulators of one sub-chunk (4·Sub·N·W floats = 32 KB at W = 16) stay in L1; whole 64-step chunks (256 KB)
    /// made the adjoint bound by L1↔L2 line traffic.
    /// </summary>
    public const int SubChunk = 8;

    /// <summary>The widest vector the hardware accelerates: 16 (AVX-512), 8 (AVX2) or 1 (scalar fallback).</summary>
    public static int HardwareWidth => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;

    public static int Threads => Math.Max(1, Math.Min(TorchSharp.torch.get_num_threads(), Environment.ProcessorCount));

    /// <summary>Chunk-state buffer length in floats for <paramref name="p"/> at width <paramref name="w"/>.</summary>
    public static long ChunkStateLength(in ScanParams p, int w) =>
        (long)p.Bt * p.K * Blocks(p.Dg, w) * p.NChunks * p.N * w;

    public static int Blocks(int dg, int w) => (dg + w - 1) / w;

    public static void Forward(ScanParams p, int width)
    {
        switch (width)
        {
            case 16: ForwardAll<Simd512, Vector512<float>>(p); break;
            case 8: ForwardAll<Simd256, Vector256<float>>(p); break;
            default: ForwardAll<SimdScalar, float>(p); break;
        }
    }

    /// <summary>Backward of the projected op (<see cref="ScanParams.XS"/>): channels-last u, g, du; δ from the rows.</summary>
    public static void BackwardProjected(ScanParams p, int width)
    {
        switch (width)
        {
            case 16: BackwardProjectedAll<Simd512, Vector512<float>>(p); break;
            case 8: BackwardProjectedAll<Simd256, Vector256<float>>(p); break;
            default: BackwardProjectedAll<SimdScalar, float>(p); break;
        }
    }

    public static void Backward(ScanParams p, int width)
    {
        switch (width)
        {
            case 16: BackwardAll<Simd512, Vector512<float>>(p); break;
            case 8: BackwardAll<Simd256, Vector256<float>>(p); break;
            default: BackwardAll<SimdScalar, float>(p); break;
        }
    }

    // ------------------------------------------------------------------------------------------------ forward

    private static void ForwardAll<TS, TV>(ScanParams p) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nb = Blocks(p.Dg, w);
        int kTasks = p.SharedU ? 1 : p.K;
        int tasks = p.Bt * kTasks * nb;
        long work = 3L * p.L * w + 2L * p.N * w + 2L * w + (long)Segment * (3 * w + 2 * p.N) + (long)p.R * w;
        ParallelTasks(tasks, work, (task, buf) =>
        {
            int cb = task % nb, rest = task / nb, kt = rest % kTasks, b = rest / kTasks;
            int k0 = p.SharedU ? 0 : kt, k1 = p.SharedU ? p.K : kt + 1;
            ForwardTask<TS, TV>(p, b, k0, k1, cb, buf);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardTask<TS, TV>(in ScanParams p, int b, int k0, int k1, int cb, float* buf)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, L = p.L, N = p.N, nb = Blocks(p.Dg, w), c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
        float* uT = buf, dT = uT + (long)L * w, yT = dT + (long)L * w, aT = yT + (long)L * w, h = aT + N * w;
        float* dVec = h + N * w, biasVec = dVec + w, seg = biasVec + w, wT = seg + Segment * (3 * w + 2 * N);
        float* uBase = p.U + b * p.USize;
        float* yBase = p.Y + b * p.USize;
        if (p.SharedU)
        {
            if (p.XS != null) RowsIn<TS, TV>(uBase + c0, L, p.Dg, nc, uT);
            else TransposeIn(uBase + (long)c0 * L, L, nc, w, uT);
            new Span<float>(yT, L * w).Clear();
        }
        for (int k = k0; k < k1; k++)
        {
            if (!p.SharedU) TransposeIn(uBase + k * p.UDirStride + (long)c0 * L, L, nc, w, uT);
            LoadChannelParams(p, k, c0, nc, w, aT, dVec, biasVec, FastExp.Log2E);   // exp(δA) = 2^(δ·A·log2 e)
            new Span<float>(h, N * w).Clear();
            long* path = p.Paths == null ? null : p.Paths + (long)k * L;
            float* hk = p.H == null ? null : p.H + ((((long)b * p.K + k) * nb + cb) * p.NChunks) * N * w;
            float* bk, ck;
            int bcStride = N;
            Projection<TV> proj = default;
            if (p.XS != null)
            {
                // Step rows [x_r | B | C] in scan order: δ is projected from them per segment (ProjectDelta, below),
                // B and C are read in place; u and y stay in pixel order (L2-resident, read at π(t)).
                int rs = p.R + 2 * N;
                float* xk = p.XS + ((long)b * p.K + k) * L * rs;
                LoadDtWeights(p, k, c0, nc, w, wT);
                proj = new Projection<TV>(xk, p.R, wT, TS.Load(biasVec));
                bk = xk + p.R; ck = bk + N; bcStride = rs;
            }
            else
            {
                TransposeDeltaIn<TS, TV>(p.Delta + ((long)b * p.K + k) * p.Dg * L + (long)c0 * L, L, nc, w, dT, w, biasVec,
                    p.DeltaSoftplus ? DeltaMap.Softplus : DeltaMap.Bias);
                bk = p.BT + ((long)b * p.K + k) * L * N; ck = p.CT + ((long)b * p.K + k) * L * N;
            }
            TV dv0 = TS.Load(dVec);
            // Without chunk states, one call over all L; with them, one call per chunk after saving its start state.
            // Projected: segments of Segment steps, δ of a whole segment first (independent steps, so the softplus
            // chains overlap), then its recurrence. Computed inside the step, δ's ~30-deep dependency chain stalled
            // every step's 16 states: 1.5 ns per step more.
            int span = hk == null ? L : p.Chunk;
            if (proj.X != null) span = Math.Min(span, Segment);
            for (int t0 = 0; t0 < L; t0 += span)
            {
                if (hk != null && t0 % p.Chunk == 0) Buffer.MemoryCopy(h, hk + (long)(t0 / p.Chunk) * N * w, N * w * 4L, N * w * 4L);
                int t1 = Math.Min(L, t0 + span);
                if (proj.X != null) ProjectDelta<TS, TV>(proj, t0, t1, bcStride, dT);
                if (path == null || p.XS != null)
                    Recurrence<TS, TV>(t0, t1, N, bcStride, path, dT, uT, yT, bk, ck, aT, h, dv0, accumulate: p.SharedU);
                else RecurrenceAlongPath<TS, TV>(t0, t1, N, path, dT, uT, yT, bk, ck, aT, h, dv0, seg);
            }
            if (!p.SharedU) TransposeOut(yT, L, nc, w, yBase + k * p.UDirStride + (long)c0 * L, accumulate: false);
        }
        if (p.SharedU && p.XS != null) RowsOut<TS, TV>(yT, L, p.Dg, nc, yBase + c0);
        else if (p.SharedU) TransposeOut(yT, L, nc, w, yBase + (long)c0 * L, accumulate: false);
    }

    /// <summary>
    /// The alternative layout, kept for the benchmark that chose the one above: SIMD over the N = 16 states of one
    /// channel (one Vector512 per state vector), channels one after another, no transposes; y_t needs a horizontal
    /// sum per step. Plain Scan (no paths), N = 16, forward only, AVX-512 only.
    /// </summary>
    internal static void ForwardOverStates(ScanParams p)
    {
        if (p.N != 16 || p.Paths != null || p.SharedU || !Vector512.IsHardwareAccelerated)
            throw new NotSupportedException("the over-states variant takes plain Scan with N = 16 on AVX-512 only");
        int blk = 16, nb = Blocks(p.Dg, blk);
        ParallelTasks(p.Bt * p.K * nb, p.L, (task, buf) =>
        {
            int cb = task % nb, rest = task / nb, k = rest % p.K, b = rest / p.K;
            ForwardOverStatesTask(p, b, k, cb * blk, Math.Min(blk, p.Dg - cb * blk), buf);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardOverStatesTask(in ScanParams p, int b, int k, int c0, int nc, float* dl)
    {
        int L = p.L;
        float* bk = p.BT + ((long)b * p.K + k) * L * 16, ck = p.CT + ((long)b * p.K + k) * L * 16;
        for (int j = 0; j < nc; j++)
        {
            long ch = (long)k * p.Dg + c0 + j;
            float* u = p.U + ((long)b * p.K * p.Dg + ch) * L, d = p.Delta + ((long)b * p.K * p.Dg + ch) * L;
            float* y = p.Y + ((long)b * p.K * p.Dg + ch) * L;
            float bias = p.Bias[ch], dskip = p.D[ch];
            int t = 0;
            for (; t + 16 <= L; t += 16)
            {
                var x = Vector512.Load(d + t) + Vector512.Create(bias);
                (p.DeltaSoftplus ? Simd512.Softplus(x) : x).Store(dl + t);
            }
            for (; t < L; t++) dl[t] = p.DeltaSoftplus ? SimdScalar.Softplus(d[t] + bias) : d[t] + bias;
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

    /// <summary>Steps per gathered segment in <see cref="RecurrenceAlongPath"/>: its rows (≈ 16 KB at W = 16) stay in L1.</summary>
    private const int Segment = 64;

    /// <summary>
    /// <see cref="Recurrence"/> along a direction path: steps t0…t1−1 read pixel π(t). Each segment's rows of δ, u, B
    /// and C are first gathered into scan order and its outputs added back to their pixels after: the gather is a
    /// plain copy loop that keeps many cache misses in flight, while the recurrence's own loads at random pixels
    /// stalled it (B and C of a new direction come from L3): measured 2× slower.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RecurrenceAlongPath<TS, TV>(int t0, int t1, int N, long* path, float* dT, float* uT, float* yT,
        float* bk, float* ck, float* aT, float* h, TV dv0, float* seg) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        float* dS = seg, uS = dS + Segment * w, yS = uS + Segment * w, bS = yS + Segment * w, cS = bS + Segment * N;
        for (int s0 = t0; s0 < t1; s0 += Segment)
        {
            int len = Math.Min(Segment, t1 - s0);
            for (int i = 0; i < len; i++)
            {
                long pos = path[s0 + i];
                TS.Store(dS + i * w, TS.Load(dT + pos * w));
                TS.Store(uS + i * w, TS.Load(uT + pos * w));
                Buffer.MemoryCopy(bk + pos * N, bS + i * N, N * 4L, N * 4L);
                Buffer.MemoryCopy(ck + pos * N, cS + i * N, N * 4L, N * 4L);
            }
            Recurrence<TS, TV>(0, len, N, N, null, dS, uS, yS, bS, cS, aT, h, dv0, accumulate: false);
            for (int i = 0; i < len; i++)
            {
                float* yp = yT + path[s0 + i] * w;
                TS.Store(yp, TS.Add(TS.Load(yp), TS.Load(yS + i * w)));
            }
        }
    }

    /// <summary>
    /// The forward recurrence of one direction over steps t0…t1−1 for one block of W channels. δ_t, B_t and C_t are
    /// read in step order (B_t[n] at bk[t·bcStride + n]); u and y at pixel π(t) (t without a path), y added when
    /// <paramref name="accumulate"/>. h (N·W floats, in L1) is carried in place. A method of its own so that the JIT
    /// keeps the polynomial's constants in registers (inside the task's loop it ran out of them and reloaded seven per
    /// state).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Recurrence<TS, TV>(int t0, int t1, int N, int bcStride, long* path, float* dT, float* uT, float* yT,
        float* bk, float* ck, float* aT, float* h, TV dv0, bool accumulate) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        for (int t = t0; t < t1; t++)
        {
            long pos = path == null ? t : path[t];
            TV dl = TS.Load(dT + (long)t * w);
            TV uv = TS.Load(uT + pos * w);
            TV du = TS.Mul(dl, uv);
            TV y = TS.Mul(dv0, uv), y1 = TS.Splat(0f), y2 = y1, y3 = y1;   // four accumulators: short FMA chains over n
            float* bt = bk + (long)t * bcStride, ct = ck + (long)t * bcStride;
            int n = 0;
            for (; n + 3 < N; n += 4)
            {
                y = TS.Fma(StateStep<TS, TV>(h + n * w, aT + n * w, dl, du, bt[n]), TS.Splat(ct[n]), y);
                y1 = TS.Fma(StateStep<TS, TV>(h + (n + 1) * w, aT + (n + 1) * w, dl, du, bt[n + 1]), TS.Splat(ct[n + 1]), y1);
                y2 = TS.Fma(StateStep<TS, TV>(h + (n + 2) * w, aT + (n + 2) * w, dl, du, bt[n + 2]), TS.Splat(ct[n + 2]), y2);
                y3 = TS.Fma(StateStep<TS, TV>(h + (n + 3) * w, aT + (n + 3) * w, dl, du, bt[n + 3]), TS.Splat(ct[n + 3]), y3);
            }
            for (; n < N; n++)
                y = TS.Fma(StateStep<TS, TV>(h + n * w, aT + n * w, dl, du, bt[n]), TS.Splat(ct[n]), y);
            y = TS.Add(TS.Add(y, y1), TS.Add(y2, y3));
            float* yp = yT + pos * w;
            TS.Store(yp, accumulate ? TS.Add(TS.Load(yp), y) : y);
        }
    }

    /// <summary>Δ projection inputs of <see cref="Recurrence"/>: x_r of step t at X + t·rowStride, weights wT (R, W), bias.</summary>
    private readonly struct Projection<TV>(float* x, int r, float* wT, TV bias) where TV : struct
    {
        public readonly float* X = x, WT = wT;
        public readonly int R = r;
        public readonly TV Bias = bias;
    }

    /// <summary>δ_t of steps t0…t1−1 into dT[t] from the rows at proj.X + t·rowStride.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProjectDelta<TS, TV>(in Projection<TV> proj, int t0, int t1, int rowStride, float* dT)
        where TS : ISimd<TV> where TV : struct
    {
        // Four steps at a time: each weight vector is loaded once for four FMAs, and the four chains are independent.
        int w = TS.Width, R = proj.R, t = t0;
        for (; t + 3 < t1; t += 4)
        {
            float* x0 = proj.X + (long)t * rowStride, x1 = x0 + rowStride, x2 = x1 + rowStride, x3 = x2 + rowStride;
            TV a0 = proj.Bias, a1 = a0, a2 = a0, a3 = a0;
            for (int r = 0; r < R; r++)
            {
                TV wr = TS.Load(proj.WT + r * w);
                a0 = TS.Fma(wr, TS.Splat(x0[r]), a0);
                a1 = TS.Fma(wr, TS.Splat(x1[r]), a1);
                a2 = TS.Fma(wr, TS.Splat(x2[r]), a2);
                a3 = TS.Fma(wr, TS.Splat(x3[r]), a3);
            }
            float* d = dT + (long)t * w;
            TS.Store(d, TS.Softplus(a0));
            TS.Store(d + w, TS.Softplus(a1));
            TS.Store(d + 2 * w, TS.Softplus(a2));
            TS.Store(d + 3 * w, TS.Softplus(a3));
        }
        for (; t < t1; t++) TS.Store(dT + (long)t * w, ProjectRow<TS, TV>(proj, proj.X + (long)t * rowStride));
    }

    /// <summary>δ = softplus(Σ_r wT[r]·x[r] + bias) for the W lanes (spec §7.2–7.3: dt_proj, then delta_softplus).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ProjectRow<TS, TV>(in Projection<TV> proj, float* x) where TS : ISimd<TV> where TV : struct =>
        TS.Softplus(ProjectRaw<TS, TV>(proj, x));

    /// <summary>Δ + bias = Σ_r wT[r]·x[r] + bias for the W lanes, before the softplus.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ProjectRaw<TS, TV>(in Projection<TV> proj, float* x) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, R = proj.R;
        TV acc = proj.Bias, acc2 = TS.Splat(0f);
        int r = 0;
        for (; r + 1 < R; r += 2)
        {
            acc = TS.Fma(TS.Load(proj.WT + r * w), TS.Splat(x[r]), acc);
            acc2 = TS.Fma(TS.Load(proj.WT + (r + 1) * w), TS.Splat(x[r + 1]), acc2);
        }
        if (r < R) acc = TS.Fma(TS.Load(proj.WT + r * w), TS.Splat(x[r]), acc);
        return TS.Add(acc, acc2);
    }

    /// <summary>One state of W channels for one step: h ← exp(δ·A)·h + δu·B_t[n], stored back and returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV StateStep<TS, TV>(float* h, float* a2, TV dl, TV du, float bn) where TS : ISimd<TV> where TV : struct
    {
        TV hn = TS.Fma(TS.Exp2NonPositive(TS.Mul(dl, TS.Load(a2))), TS.Load(h), TS.Mul(du, TS.Splat(bn)));
        TS.Store(h, hn);
        return hn;
    }

    // ------------------------------------------------------------------------------------------------ backward

    private static void BackwardAll<TS, TV>(ScanParams p) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nb = Blocks(p.Dg, w), dgp = nb * w, ch = p.Chunk, N = p.N;
        int kTasks = p.SharedU ? 1 : p.K;
        int tasks = p.Bt * kTasks;
        // uT, gT, dT, duT, ddT: (L, dgp); per block: A, λ carry, dA (N·W each), D, bias, dD, dbias (W each); per chunk: a, h (ch+1), dB, dC.
        int sub = SubChunk, nsub = (ch + sub - 1) / sub;
        long work = 6L * p.L * dgp + (long)nb * (4L * N * w + 4L * w) + (long)sub * N * w * 4 + (long)N * w
                    + (long)nb * nsub * N * w + 6L * ch * dgp + 2L * ch * N;
        ParallelTasks(tasks, work, (task, buf) =>
        {
            int kt = task % kTasks, b = task / kTasks;
            int k0 = p.SharedU ? 0 : kt, k1 = p.SharedU ? p.K : kt + 1;
            BackwardTask<TS, TV>(p, b, k0, k1, buf);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardTask<TS, TV>(in ScanParams p, int b, int k0, int k1, float* buf)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, L = p.L, N = p.N, nb = Blocks(p.Dg, w), dgp = nb * w, ch = p.Chunk, nw = N * w;
        long ld = (long)L * dgp;
        float* uT = buf, gT = uT + ld, dT = gT + ld, duT = dT + ld, ddT = duT + ld, sgT = ddT + ld;
        float* aT = sgT + ld, a2T = aT + (long)nb * nw, lam = a2T + (long)nb * nw, dAacc = lam + (long)nb * nw;
        float* dVec = dAacc + (long)nb * nw, biasVec = dVec + (long)nb * w, dDacc = biasVec + (long)nb * w;
        float* dBiasAcc = dDacc + (long)nb * w, aBuf = dBiasAcc + (long)nb * w, hBuf = aBuf + (long)SubChunk * nw;
        int sub = SubChunk, nsub = (ch + sub - 1) / sub;
        float* dBacc = hBuf + (long)(sub + 1) * nw, dCacc = dBacc + (long)sub * nw, subH = dCacc + (long)sub * nw;
        // With paths, a chunk's rows are gathered into scan order first (their pixels are scattered over the whole
        // (L, d) buffers, which do not fit in L2), and du / dΔ are scattered back after the chunk.
        long lc = (long)ch * dgp;
        float* uL = subH + (long)nb * nsub * nw, gL = uL + lc, dL = gL + lc, sgL = dL + lc, duL = sgL + lc, ddL = duL + lc;
        float* bL = ddL + lc, cL = bL + (long)ch * N;
        long uOff = b * p.USize;
        for (int k = k0; k < k1; k++)
        {
            long uk = uOff + k * p.UDirStride;
            if (k == k0 || !p.SharedU)
            {
                for (int cb = 0; cb < nb; cb++)
                {
                    int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
                    TransposeIn(p.U + uk + (long)c0 * L, L, nc, w, uT + c0, dgp);
                    TransposeIn(p.G + uk + (long)c0 * L, L, nc, w, gT + c0, dgp);
                }
                new Span<float>(duT, checked((int)ld)).Clear();
            }
            long dOff = ((long)b * p.K + k) * p.Dg * L;
            for (int cb = 0; cb < nb; cb++)
            {
                int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
                LoadChannelParams(p, k, c0, nc, w, aT + (long)cb * nw, dVec + (long)cb * w, biasVec + (long)cb * w,
                    1f, a2T + (long)cb * nw);
                TransposeDeltaIn<TS, TV>(p.Delta + dOff + (long)c0 * L, L, nc, w, dT + c0, dgp, biasVec + (long)cb * w,
                    p.DeltaSoftplus ? DeltaMap.Softplus : DeltaMap.Bias);
                TransposeDeltaIn<TS, TV>(p.Delta + dOff + (long)c0 * L, L, nc, w, sgT + c0, dgp, biasVec + (long)cb * w,
                    p.DeltaSoftplus ? DeltaMap.SoftplusGrad : DeltaMap.One);
            }
            new Span<float>(lam, nb * nw).Clear();
            new Span<float>(dAacc, nb * nw).Clear();
            new Span<float>(dDacc, nb * w).Clear();
            new Span<float>(dBiasAcc, nb * w).Clear();
            float* bk = p.BT + ((long)b * p.K + k) * L * N, ck = p.CT + ((long)b * p.K + k) * L * N;
            float* dbk = p.dBT + ((long)b * p.K + k) * L * N, dck = p.dCT + ((long)b * p.K + k) * L * N;
            long* path = p.Paths == null ? null : p.Paths + (long)k * L;
            for (int c = p.NChunks - 1; c >= 0; c--)
            {
                int t0 = c * ch, len = Math.Min(ch, L - t0);
                // Chunk-local views: the (L, d) buffers themselves without paths, gathered copies with them.
                float* cu = uT, cg = gT, cd = dT, csg = sgT, cdu = duT, cdd = ddT, cbk = bk, cck = ck;
                int tb = t0;
                if (path != null)
                {
                    long* cp = path + t0;
                    GatherRows(uT, uL, cp, len, dgp);
                    GatherRows(gT, gL, cp, len, dgp);
                    GatherRows(dT, dL, cp, len, dgp);
                    GatherRows(sgT, sgL, cp, len, dgp);
                    GatherRows(bk, bL, cp, len, N);
                    GatherRows(ck, cL, cp, len, N);
                    new Span<float>(duL, checked(len * dgp)).Clear();
                    cu = uL; cg = gL; cd = dL; csg = sgL; cdu = duL; cdd = ddL; cbk = bL; cck = cL; tb = 0;
                }
                // Sub-chunk starting states of every block, from the stored chunk state (one forward recompute).
                for (int cb = 0; cb < nb; cb++)
                {
                    float* hk = p.H + ((((long)b * p.K + k) * nb + cb) * p.NChunks + c) * nw;
                    SubCheckpoints<TS, TV>(p, cb * w, dgp, tb, len, sub, N, cbk, hk, cu, cd, a2T + (long)cb * nw,
                        subH + (long)cb * nsub * nw, hBuf);
                }
                for (int sc = (len + sub - 1) / sub - 1; sc >= 0; sc--)
                {
                    int s0 = t0 + sc * sub, slen = Math.Min(sub, t0 + len - s0);
                    new Span<float>(dBacc, slen * nw).Clear();
                    new Span<float>(dCacc, slen * nw).Clear();
                    for (int cb = 0; cb < nb; cb++)
                    {
                        BackwardChunk<TS, TV>(p, cb * w, dgp, s0 - t0 + tb, slen, N, cbk, cck, subH + ((long)cb * nsub + sc) * nw,
                            cu, cg, cd, csg, cdu, cdd, aT + (long)cb * nw, a2T + (long)cb * nw, lam + (long)cb * nw,
                            dAacc + (long)cb * nw, dVec + (long)cb * w, biasVec + (long)cb * w, dDacc + (long)cb * w,
                            dBiasAcc + (long)cb * w, aBuf, hBuf, dBacc, dCacc);
                    }
                    // dB, dC: one horizontal reduction per (step, state) for all blocks of the sub-chunk.
                    for (int i = 0; i < slen; i++)
                    {
                        long pos = path == null ? s0 + i : path[s0 + i];
                        for (int n = 0; n < N; n++)
                        {
                            dbk[pos * N + n] = TS.Sum(TS.Load(dBacc + (long)i * nw + n * w));
                            dck[pos * N + n] = TS.Sum(TS.Load(dCacc + (long)i * nw + n * w));
                        }
                    }
                }
                if (path != null)
                {
                    AddRowsAt<TS, TV>(duL, duT, path + t0, len, dgp);
                    ScatterRows(ddL, ddT, path + t0, len, dgp);
                }
            }
            for (int cb = 0; cb < nb; cb++)
            {
                int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
                TransposeOut(ddT + c0, L, nc, w, p.dDelta + dOff + (long)c0 * L, accumulate: false, dgp);
                StoreParamPartials(p, b, k, cb, w, dDacc, dBiasAcc, dAacc);
            }
            if (k == k1 - 1 || !p.SharedU)
            {
                for (int cb = 0; cb < nb; cb++)
                {
                    int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
                    TransposeOut(duT + c0, L, nc, w, p.dU + uk + (long)c0 * L, accumulate: false, dgp);
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ projected backward
    //
    // The same adjoint as BackwardTask, fed differently: u and g arrive channels-last, so their (L, dgp) buffers are
    // row copies; a chunk's u and g rows are gathered into scan order as before, but δ and softplus'(Δ) are computed
    // in scan order from the step rows [x_r | B | C] (no (Bt, K, d, L) delta in memory, nor its gathers), B and C are
    // read from the rows in place, dB and dC are written into the d rows, and dδ_raw never leaves the chunk: it goes
    // straight into dWdt (Σ_t dδ·x_r, per lane) and into d x_r (Σ_c Wdt·dδ, one horizontal sum per step and rank).

    private static void BackwardProjectedAll<TS, TV>(ScanParams p) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, nb = Blocks(p.Dg, w), dgp = nb * w, ch = p.Chunk, N = p.N, R = p.R;
        int sub = SubChunk, nsub = (ch + sub - 1) / sub;
        long work = 3L * p.L * dgp + (long)nb * (4L * N * w + 4L * w + 2L * R * w) + (long)sub * N * w * 4 + (long)N * w
                    + (long)nb * nsub * N * w + 6L * ch * dgp + (long)R * w;
        ParallelTasks(p.Bt, work, (b, buf) => BackwardProjectedTask<TS, TV>(p, b, buf));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardProjectedTask<TS, TV>(in ScanParams p, int b, float* buf) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, L = p.L, N = p.N, R = p.R, rs = R + 2 * N, nb = Blocks(p.Dg, w), dgp = nb * w, ch = p.Chunk;
        int nw = N * w, rw = R * w, sub = SubChunk, nsub = (ch + sub - 1) / sub;
        long ld = (long)L * dgp, lc = (long)ch * dgp;
        float* uT = buf, gT = uT + ld, duT = gT + ld;
        float* aT = duT + ld, a2T = aT + (long)nb * nw, lam = a2T + (long)nb * nw, dAacc = lam + (long)nb * nw;
        float* dVec = dAacc + (long)nb * nw, biasVec = dVec + (long)nb * w, dDacc = biasVec + (long)nb * w;
        float* dBiasAcc = dDacc + (long)nb * w, wT = dBiasAcc + (long)nb * w, dWacc = wT + (long)nb * rw;
        float* aBuf = dWacc + (long)nb * rw, hBuf = aBuf + (long)sub * nw;
        float* dBacc = hBuf + (long)(sub + 1) * nw, dCacc = dBacc + (long)sub * nw, subH = dCacc + (long)sub * nw;
        float* uL = subH + (long)nb * nsub * nw, gL = uL + lc, dL = gL + lc, sgL = dL + lc, duL = sgL + lc, ddL = duL + lc;
        float* rAcc = ddL + lc;
        long cl = (long)b * L * p.Dg;   // channels-last batch offset of u, g, du
        for (int cb = 0; cb < nb; cb++)
        {
            int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
            RowsIn<TS, TV>(p.U + cl + c0, L, p.Dg, nc, uT + c0, dgp);
            RowsIn<TS, TV>(p.G + cl + c0, L, p.Dg, nc, gT + c0, dgp);
        }
        new Span<float>(duT, checked((int)ld)).Clear();
        for (int k = 0; k < p.K; k++)
        {
            for (int cb = 0; cb < nb; cb++)
            {
                int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
                LoadChannelParams(p, k, c0, nc, w, aT + (long)cb * nw, dVec + (long)cb * w, biasVec + (long)cb * w,
                    1f, a2T + (long)cb * nw);
                LoadDtWeights(p, k, c0, nc, w, wT + (long)cb * rw);
            }
            new Span<float>(lam, nb * nw).Clear();
            new Span<float>(dAacc, nb * nw).Clear();
            new Span<float>(dDacc, nb * w).Clear();
            new Span<float>(dBiasAcc, nb * w).Clear();
            new Span<float>(dWacc, nb * rw).Clear();
            float* xk = p.XS + ((long)b * p.K + k) * L * rs, dxk = p.dXS + ((long)b * p.K + k) * L * rs;
            long* path = p.Paths + (long)k * L;
            for (int c = p.NChunks - 1; c >= 0; c--)
            {
                int t0 = c * ch, len = Math.Min(ch, L - t0);
                GatherRows(uT, uL, path + t0, len, dgp);
                GatherRows(gT, gL, path + t0, len, dgp);
                new Span<float>(duL, checked(len * dgp)).Clear();
                for (int cb = 0; cb < nb; cb++)
                {
                    var proj = new Projection<TV>(xk + (long)t0 * rs, R, wT + (long)cb * rw, TS.Load(biasVec + (long)cb * w));
                    for (int i = 0; i < len; i++)
                    {
                        TV raw = ProjectRaw<TS, TV>(proj, proj.X + (long)i * rs);
                        TS.Store(dL + (long)i * dgp + cb * w, TS.Softplus(raw));
                        TS.Store(sgL + (long)i * dgp + cb * w, TS.SoftplusGrad(raw));
                    }
                }
                float* cbk = xk + (long)t0 * rs + R, cck = cbk + N;
                for (int cb = 0; cb < nb; cb++)
                {
                    float* hk = p.H + ((((long)b * p.K + k) * nb + cb) * p.NChunks + c) * nw;
                    SubCheckpoints<TS, TV>(p, cb * w, dgp, 0, len, sub, rs, cbk, hk, uL, dL, a2T + (long)cb * nw,
                        subH + (long)cb * nsub * nw, hBuf);
                }
                for (int sc = (len + sub - 1) / sub - 1; sc >= 0; sc--)
                {
                    int s0 = sc * sub, slen = Math.Min(sub, len - s0);
                    new Span<float>(dBacc, slen * nw).Clear();
                    new Span<float>(dCacc, slen * nw).Clear();
                    for (int cb = 0; cb < nb; cb++)
                    {
                        BackwardChunk<TS, TV>(p, cb * w, dgp, s0, slen, rs, cbk, cck, subH + ((long)cb * nsub + sc) * nw,
                            uL, gL, dL, sgL, duL, ddL, aT + (long)cb * nw, a2T + (long)cb * nw, lam + (long)cb * nw,
                            dAacc + (long)cb * nw, dVec + (long)cb * w, biasVec + (long)cb * w, dDacc + (long)cb * w,
                            dBiasAcc + (long)cb * w, aBuf, hBuf, dBacc, dCacc);
                    }
                    for (int i = 0; i < slen; i++)
                    {
                        float* row = dxk + (long)(t0 + s0 + i) * rs + R;
                        for (int n = 0; n < N; n++)
                        {
                            row[n] = TS.Sum(TS.Load(dBacc + (long)i * nw + n * w));
                            row[N + n] = TS.Sum(TS.Load(dCacc + (long)i * nw + n * w));
                        }
                    }
                }
                // dδ_raw of the chunk (ddL, scan order) → dWdt per lane and d x_r per step.
                for (int i = 0; i < len; i++)
                {
                    float* x = xk + (long)(t0 + i) * rs;
                    new Span<float>(rAcc, rw).Clear();
                    for (int cb = 0; cb < nb; cb++)
                    {
                        TV dd = TS.Load(ddL + (long)i * dgp + cb * w);
                        float* wb = wT + (long)cb * rw, dwb = dWacc + (long)cb * rw;
                        for (int r = 0; r < R; r++)
                        {
                            TS.Store(dwb + r * w, TS.Fma(dd, TS.Splat(x[r]), TS.Load(dwb + r * w)));
                            TS.Store(rAcc + r * w, TS.Fma(dd, TS.Load(wb + r * w), TS.Load(rAcc + r * w)));
                        }
                    }
                    float* drow = dxk + (long)(t0 + i) * rs;
                    for (int r = 0; r < R; r++) drow[r] = TS.Sum(TS.Load(rAcc + r * w));
                }
                AddRowsAt<TS, TV>(duL, duT, path + t0, len, dgp);
            }
            for (int cb = 0; cb < nb; cb++)
            {
                StoreParamPartials(p, b, k, cb, w, dDacc, dBiasAcc, dAacc);
                int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
                long row = (long)b * p.K * p.Dg + (long)k * p.Dg + c0;   // (Bt, K·Dg) partials, as there
                for (int j = 0; j < nc; j++)
                    for (int r = 0; r < R; r++) p.dWdt[(row + j) * R + r] = dWacc[(long)cb * rw + r * w + j];
            }
        }
        for (int cb = 0; cb < nb; cb++)
        {
            int c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
            RowsOut<TS, TV>(duT + c0, L, p.Dg, nc, p.dU + cl + c0, dgp);
        }
    }

    /// <summary>Recomputes h over one chunk of one block from its stored start state, keeping h at every sub-chunk start.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SubCheckpoints<TS, TV>(in ScanParams p, int c0, int dgp, int t0, int len, int sub, int bcStride,
        float* bk, float* hStart, float* uT, float* dT, float* a2T, float* subH, float* h)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, N = p.N, nw = N * w;
        Buffer.MemoryCopy(hStart, h, nw * 4L, nw * 4L);
        for (int i = 0; i < len; i++)
        {
            if (i % sub == 0) Buffer.MemoryCopy(h, subH + (long)(i / sub) * nw, nw * 4L, nw * 4L);
            long pos = t0 + i;
            long e = pos * dgp + c0;
            TV dl = TS.Load(dT + e);
            TV du = TS.Mul(dl, TS.Load(uT + e));
            float* bt = bk + pos * bcStride;
            for (int n = 0; n < N; n++)
            {
                TV a = TS.Exp2NonPositive(TS.Mul(dl, TS.Load(a2T + n * w)));
                TS.Store(h + n * w, TS.Fma(a, TS.Load(h + n * w), TS.Mul(du, TS.Splat(bt[n]))));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardChunk<TS, TV>(in ScanParams p, int c0, int dgp, int t0, int len, int bcStride,
        float* bk, float* ck, float* hStart, float* uT, float* gT, float* dT, float* sgT, float* duT, float* ddT,
        float* aT, float* a2T, float* lam, float* dA, float* dVec, float* biasVec, float* dDacc, float* dBiasAcc,
        float* aBuf, float* hBuf, float* dBacc, float* dCacc)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width, N = p.N, nw = N * w;
        TV dv0 = TS.Load(dVec);
        // Recompute a_t and h_t inside the chunk from the stored boundary state (hBuf[0] = h_{t0−1}).
        Buffer.MemoryCopy(hStart, hBuf, nw * 4L, nw * 4L);
        for (int i = 0; i < len; i++)
        {
            long pos = t0 + i;
            long e = pos * dgp + c0;
            TV dl = TS.Load(dT + e);
            TV du = TS.Mul(dl, TS.Load(uT + e));
            float* bt = bk + pos * bcStride, hp = hBuf + (long)i * nw, hn = hp + nw, ai = aBuf + (long)i * nw;
            for (int n = 0; n < N; n++)
            {
                TV a = TS.Exp2NonPositive(TS.Mul(dl, TS.Load(a2T + n * w)));
                TS.Store(ai + n * w, a);
                TS.Store(hn + n * w, TS.Fma(a, TS.Load(hp + n * w), TS.Mul(du, TS.Splat(bt[n]))));
            }
        }
        // Adjoint, reverse in time. lam holds a_{t+1}·λ_{t+1} between steps (and between chunks).
        TV dDv = TS.Load(dDacc), dBiasV = TS.Load(dBiasAcc);
        for (int i = len - 1; i >= 0; i--)
        {
            long pos = t0 + i;
            long e = pos * dgp + c0;
            TV dl = TS.Load(dT + e);
            TV uv = TS.Load(uT + e), g = TS.Load(gT + e);
            TV dlu = TS.Mul(dl, uv);
            TV s = TS.Splat(0f), dds = TS.Splat(0f);
            float* bt = bk + pos * bcStride, ct = ck + pos * bcStride, hp = hBuf + (long)i * nw, hn = hp + nw, ai = aBuf + (long)i * nw;
            float* dBi = dBacc + (long)i * nw, dCi = dCacc + (long)i * nw;
            for (int n = 0; n < N; n++)
            {
                int o = n * w;
                TV a = TS.Load(ai + o);
                TV l = TS.Fma(TS.Splat(ct[n]), g, TS.Load(lam + o));
                s = TS.Fma(l, TS.Splat(bt[n]), s);
                TV q = TS.Mul(l, TS.Mul(a, TS.Load(hp + o)));
                dds = TS.Fma(q, TS.Load(aT + o), dds);
                TS.Store(dA + o, TS.Fma(q, dl, TS.Load(dA + o)));
                TS.Store(dBi + o, TS.Fma(l, dlu, TS.Load(dBi + o)));
                TS.Store(dCi + o, TS.Fma(g, TS.Load(hn + o), TS.Load(dCi + o)));
                TS.Store(lam + o, TS.Mul(a, l));
            }
            TS.Store(duT + e, TS.Add(TS.Load(duT + e), TS.Fma(dv0, g, TS.Mul(dl, s))));
            TV ddl = TS.Fma(uv, s, dds);
            TV draw = TS.Mul(ddl, TS.Load(sgT + e));
            TS.Store(ddT + e, draw);
            dDv = TS.Fma(g, uv, dDv);
            dBiasV = TS.Add(dBiasV, draw);
        }
        TS.Store(dDacc, dDv);
        TS.Store(dBiasAcc, dBiasV);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /// <summary>A, D, bias of direction k, channels c0…c0+nc, as lanes; padded lanes get 0 (so they stay 0).</summary>
    private static void LoadChannelParams(in ScanParams p, int k, int c0, int nc, int w, float* aT, float* dVec, float* biasVec,
        float aScale = 1f, float* a2T = null)
    {
        int N = p.N;
        for (int j = 0; j < w; j++)
        {
            long ch = (long)k * p.Dg + c0 + j;
            bool ok = j < nc;
            dVec[j] = ok ? p.D[ch] : 0f;
            biasVec[j] = ok ? p.Bias[ch] : 0f;
            for (int n = 0; n < N; n++) aT[n * w + j] = ok ? p.A[ch * N + n] * aScale : 0f;
            if (a2T != null) for (int n = 0; n < N; n++) a2T[n * w + j] = ok ? p.A[ch * N + n] * FastExp.Log2E : 0f;
        }
    }

    /// <summary>Row path[i] of src → row i of dst, for i &lt; len; rows of <paramref name="rowFloats"/> floats.</summary>
    private static void GatherRows(float* src, float* dst, long* path, int len, long rowFloats)
    {
        long bytes = rowFloats * 4;
        for (int i = 0; i < len; i++) Buffer.MemoryCopy(src + path[i] * rowFloats, dst + i * rowFloats, bytes, bytes);
    }

    /// <summary>Inverse of <see cref="GatherRows"/>: row i of src → row path[i] of dst.</summary>
    private static void ScatterRows(float* src, float* dst, long* path, int len, long rowFloats)
    {
        long bytes = rowFloats * 4;
        for (int i = 0; i < len; i++) Buffer.MemoryCopy(src + i * rowFloats, dst + path[i] * rowFloats, bytes, bytes);
    }

    /// <summary>Row i of src added into row path[i] of dst (rows of dgp floats, a multiple of the width).</summary>
    private static void AddRowsAt<TS, TV>(float* src, float* dst, long* path, int len, int dgp) where TS : ISimd<TV> where TV : struct
    {
        for (int i = 0; i < len; i++)
        {
            float* d = dst + path[i] * dgp, s = src + (long)i * dgp;
            for (int j = 0; j < dgp; j += TS.Width) TS.Store(d + j, TS.Add(TS.Load(d + j), TS.Load(s + j)));
        }
    }

    /// <summary>dD, dbias and dA of block cb of direction k from its per-lane accumulators, into the (Bt, K·Dg) partials.</summary>
    private static void StoreParamPartials(in ScanParams p, int b, int k, int cb, int w, float* dDacc, float* dBiasAcc, float* dAacc)
    {
        int N = p.N, c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
        long row = (long)b * p.K * p.Dg + (long)k * p.Dg + c0, nw = (long)N * w;
        for (int j = 0; j < nc; j++)
        {
            p.dD[row + j] = dDacc[cb * w + j];
            p.dBias[row + j] = dBiasAcc[cb * w + j];
            for (int n = 0; n < N; n++) p.dA[(row + j) * N + n] = dAacc[cb * nw + n * w + j];
        }
    }

    /// <summary>Wdt[k, c0 + j, r] as wT[r·W + j]; padded lanes get 0.</summary>
    private static void LoadDtWeights(in ScanParams p, int k, int c0, int nc, int w, float* wT)
    {
        for (int j = 0; j < w; j++)
            for (int r = 0; r < p.R; r++)
                wT[r * w + j] = j < nc ? p.Wdt[((long)k * p.Dg + c0 + j) * p.R + r] : 0f;
    }

    /// <summary>Channels-last (L rows of <paramref name="rowLength"/>) columns c0…c0+nc at src → dst (L, W), zero-padded.</summary>
    private static void RowsIn<TS, TV>(float* src, int L, int rowLength, int nc, float* dst, int dstStride = 0)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        if (dstStride == 0) dstStride = w;
        if (nc == w)
        {
            for (int t = 0; t < L; t++) TS.Store(dst + (long)t * dstStride, TS.Load(src + (long)t * rowLength));
            return;
        }
        for (int t = 0; t < L; t++)
        {
            float* s = src + (long)t * rowLength, d = dst + (long)t * dstStride;
            for (int j = 0; j < nc; j++) d[j] = s[j];
            for (int j = nc; j < w; j++) d[j] = 0f;
        }
    }

    /// <summary>Inverse of <see cref="RowsIn"/> for the first nc lanes.</summary>
    private static void RowsOut<TS, TV>(float* src, int L, int rowLength, int nc, float* dst, int srcStride = 0)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        if (srcStride == 0) srcStride = w;
        if (nc == w)
        {
            for (int t = 0; t < L; t++) TS.Store(dst + (long)t * rowLength, TS.Load(src + (long)t * srcStride));
            return;
        }
        for (int t = 0; t < L; t++)
        {
            float* s = src + (long)t * srcStride, d = dst + (long)t * rowLength;
            for (int j = 0; j < nc; j++) d[j] = s[j];
        }
    }

    private const int Tile = 32;

    /// <summary>(nc rows × L) at src → dst[t·stride + j] for j &lt; w, zero-padding lanes nc…w−1. Tiled over time:
    /// the rows are L floats apart (a multiple of 4 KB for our L), so walking all rows at once would hit one L1 set
    /// and miss on every read; a 32-step tile touches nc lines to read and 32 to write, all in L1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposeIn(float* src, int L, int nc, int w, float* dst, int stride = 0)
    {
        if (stride == 0) stride = w;
        if (w == 16 && Avx2.IsSupported && Vector512.IsHardwareAccelerated && (long)L * 15 < int.MaxValue)
        {
            // Two 8-lane gathers per step read the 16 rows at t (lanes ≥ nc re-read row 0 and are zeroed).
            var idx = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var keep = Vector512.LessThan(idx, Vector512.Create(nc));
            idx = Vector512.ConditionalSelect(keep, idx * L, Vector512<int>.Zero);
            var keepF = keep.AsSingle();
            Vector256<int> lo = idx.GetLower(), hi = idx.GetUpper();
            for (int t = 0; t < L; t++)
            {
                var v = Vector512.Create(Avx2.GatherVector256(src + t, lo, 4), Avx2.GatherVector256(src + t, hi, 4));
                (v & keepF).Store(dst + (long)t * stride);
            }
            return;
        }
        for (int t0 = 0; t0 < L; t0 += Tile)
        {
            int t1 = Math.Min(L, t0 + Tile);
            for (int j = 0; j < nc; j++)
            {
                float* row = src + (long)j * L;
                for (int t = t0; t < t1; t++) dst[(long)t * stride + j] = row[t];
            }
            for (int j = nc; j < w; j++)
                for (int t = t0; t < t1; t++) dst[(long)t * stride + j] = 0f;
        }
    }

    internal enum DeltaMap { Bias, Softplus, SoftplusGrad, One }

    /// <summary>
    /// <see cref="TransposeIn"/> for Δ, then a vectorised in-place map over the (L, W) buffer with x = Δ + bias (bias
    /// per lane): x (Bias), softplus(x) (Softplus), softplus'(x) (SoftplusGrad) or 1 (One). The scan loops then read
    /// δ directly: one softplus per W elements, outside the recurrence.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposeDeltaIn<TS, TV>(float* src, int L, int nc, int w, float* dst, int stride, float* biasVec, DeltaMap map)
        where TS : ISimd<TV> where TV : struct
    {
        TransposeIn(src, L, nc, w, dst, stride);
        TV bias = TS.Load(biasVec);
        TV pad = TS.Load(biasVec);   // lanes ≥ nc must stay 0: mask them with a 1/0 vector
        float* m = stackalloc float[w];
        for (int j = 0; j < w; j++) m[j] = j < nc ? 1f : 0f;
        TV mask = TS.Load(m);
        for (int t = 0; t < L; t++)
        {
            float* p = dst + (long)t * stride;
            TV x = TS.Add(TS.Load(p), bias);
            TV r = map switch
            {
                DeltaMap.Softplus => TS.Softplus(x), DeltaMap.SoftplusGrad => TS.SoftplusGrad(x),
                DeltaMap.One => TS.Splat(1f), _ => x,
            };
            TS.Store(p, TS.Mul(r, mask));
        }
    }

    /// <summary>Inverse of <see cref="TransposeIn"/> for the first nc lanes, tiled the same way.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposeOut(float* src, int L, int nc, int w, float* dst, bool accumulate, int stride = 0)
    {
        if (stride == 0) stride = w;
        if (!accumulate && w == 16 && Avx2.IsSupported && Vector512.IsHardwareAccelerated && stride * 15L < int.MaxValue)
        {
            // Output row j, steps t…t+15 = src[(t+i)·stride + j]: two 8-lane gathers within one L1-resident tile.
            var idx = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) * stride;
            Vector256<int> lo = idx.GetLower(), hi = idx.GetUpper();
            int tv = L & ~15;
            for (int t0 = 0; t0 < tv; t0 += Tile)
            {
                int t1 = Math.Min(tv, t0 + Tile);
                for (int j = 0; j < nc; j++)
                {
                    float* row = dst + (long)j * L;
                    for (int t = t0; t < t1; t += 16)
                    {
                        float* b = src + (long)t * stride + j;
                        Vector512.Create(Avx2.GatherVector256(b, lo, 4), Avx2.GatherVector256(b, hi, 4)).Store(row + t);
                    }
                }
            }
            for (int j = 0; j < nc; j++)
                for (int t = tv; t < L; t++) dst[(long)j * L + t] = src[(long)t * stride + j];
            return;
        }
        for (int t0 = 0; t0 < L; t0 += Tile)
        {
            int t1 = Math.Min(L, t0 + Tile);
            for (int j = 0; j < nc; j++)
            {
                float* row = dst + (long)j * L;
                if (accumulate) for (int t = t0; t < t1; t++) row[t] += src[(long)t * stride + j];
                else for (int t = t0; t < t1; t++) row[t] = src[(long)t * stride + j];
            }
        }
    }

    /// <summary>
    /// Runs tasks 0…count−1 on <see cref="Threads"/> workers, each with its own 64-byte-aligned scratch buffer of
    /// <paramref name="workFloats"/> floats allocated once per worker and call (never inside the hot loops).
    /// </summary>
    private static void ParallelTasksRaw(int count, long workFloats, Action<int, IntPtr> body)
    {
        int workers = Math.Min(Threads, count);
        int next = -1;
        void Worker()
        {
            float* buf = ScratchBuffer(workFloats);
            int i;
            while ((i = Interlocked.Increment(ref next)) < count) body(i, (IntPtr)buf);
        }
        if (workers <= 1) { Worker(); return; }
        var threads = new Task[workers - 1];
        for (int i = 0; i < threads.Length; i++) threads[i] = Task.Run(Worker);
        Worker();
        Task.WaitAll(threads);
    }

    [ThreadStatic] private static IntPtr _scratch;
    [ThreadStatic] private static long _scratchFloats;

    /// <summary>
    /// The calling thread's scratch buffer, grown on demand and kept: fresh pages on every call cost ~10 % of a
    /// forward pass in page faults. At most the largest request per thread stays allocated (≈ 6·L·d floats).
    /// </summary>
    private static float* ScratchBuffer(long floats)
    {
        if (_scratchFloats < floats)
        {
            if (_scratch != IntPtr.Zero) NativeMemory.AlignedFree((void*)_scratch);
            _scratch = (IntPtr)NativeMemory.AlignedAlloc((nuint)(floats * 4 + 64), 64);
            _scratchFloats = floats;
        }
        return (float*)_scratch;
    }

    private delegate void TaskBody(int task, float* buf);

    private static void ParallelTasks(int count, long workFloats, TaskBody body) =>
        ParallelTasksRaw(count, workFloats, (i, buf) => body(i, (float*)buf));
}
