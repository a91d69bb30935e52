// The projected selective scan over raw float32 memory: the kernels behind SelectiveScanCpu.ScanAndMergeProjected,
// the one op SS2D calls (spec §7.3 forward, §7.5 backward, the §8.2 gathers and the §8.3 merge folded in).
//
// Legend: Bt batch, K directions, Dg channels (d_inner), N states, L steps, R the Δ rank, W the vector width (16 for
// AVX-512, 8 for AVX2, 1 scalar), a block = W channels of one direction, π_k the path of direction k.
//
// Per direction k, channel d, state n, step t (h_{-1} = 0), with p = π_k[t] the pixel read at step t:
//     Δ_t    = Wdt[k,d]·x_r,t + bias[k,d],   δ_t = softplus(Δ_t)    (§7.3 steps 2–3; linear above 20, like torch)
//     a_t    = exp(δ_t·A[d,n])                                      zero-order hold for A
//     h_t[n] = a_t·h_{t−1}[n] + δ_t·B_t[n]·u_p                      Euler for B (B̄ = δB), as mamba's kernel
//     y_p   += Σ_n C_t[n]·h_t[n] + D·u_p                            summed over k (§8.3)
// x_r, B and C come from the x_proj rows of pixel p for direction k; the backward (ScanBackward) adds the §7.5
// adjoint.
//
// Layout. SIMD runs over the W channels of a block, not over the N states: B_t and C_t are shared by the channels of a
// direction (scalar broadcasts), y_t of W channels is one vector (no horizontal sum per step), and the N states of a
// block sit in N vectors. u, y (Bt, L, Dg) are channels-last in pixel order, so a block's W channels at a pixel are
// one vector; a task copies its block of u into an (L, W) buffer that stays in L2 and reads it at π(t). The x_proj
// rows are gathered once by the tensor driver into scan order, (Bt, K, L, R + 2N), so step t of direction k reads
// [x_r | B | C] contiguously. No (Bt, K, Dg, L) tensor (δ, its gradient, gathered u) exists in either pass.
//
// Files: ScanForward (recurrence), ScanBackward (chunked recompute + adjoint), ScanRows (row copies, gathers,
// parameter gradients out), ParamLanes (the parameters in lane layout, once per call), ScanWorkers (task pool and
// scratch), ScanSimd / FastExp (vector math). Measurements and the choices they led to: docs/performance.md,
// "Selective scan".

using System.Runtime.Intrinsics;

namespace MambaAD.Ssm;

internal static unsafe class ScanKernels
{
    /// <summary>
    /// Steps between the states the forward stores for the backward. The backward recomputes each chunk once from its
    /// start state into the adjoint's buffers (a_t and h_t: 2·Chunk·N·W floats, 64 KB at W = 16) and walks back over
    /// it; longer chunks needed a second recompute to find the states inside them. Every 32nd state costs 8× the
    /// memory of every 256th, ≈ +0.7 GB at batch 16, 256² (docs/performance.md, "Issue 14, phase 7").
    /// </summary>
    public const int Chunk = 32;

    /// <summary>
    /// The forward computes δ of this many steps before their recurrence (independent steps, so the softplus chains
    /// overlap instead of stalling each step's states); the segment's δ rows (4 KB at W = 16) stay in L1. A multiple
    /// of <see cref="Chunk"/>, so that chunk boundaries fall inside segments.
    /// </summary>
    public const int Segment = 64;

    /// <summary>The widest vector the hardware accelerates: 16 (AVX-512), 8 (AVX2) or 1 (scalar fallback).</summary>
    public static int HardwareWidth => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;

    /// <summary>Blocks of <paramref name="w"/> channels covering <paramref name="dg"/> (the last one may be partial).</summary>
    public static int Blocks(int dg, int w) => (dg + w - 1) / w;

    /// <summary>Chunk-state buffer length in floats for <paramref name="p"/> at width <paramref name="w"/>.</summary>
    public static long ChunkStateLength(in ScanParams p, int w) =>
        (long)p.Bt * p.K * Blocks(p.Dg, w) * p.NChunks * p.N * w;

    /// <summary>y from u and the step rows; stores the chunk states in <see cref="ScanParams.H"/> when it is set.</summary>
    public static void Forward(ScanParams p, int width)
    {
        switch (width)
        {
            case 16: ScanForward.Run<Simd512, Vector512<float>>(p); break;
            case 8: ScanForward.Run<Simd256, Vector256<float>>(p); break;
            default: ScanForward.Run<SimdScalar, float>(p); break;
        }
    }

    /// <summary>du, the d rows, dWdt, dA, dD and dbias (per batch) from g and the chunk states of <see cref="Forward"/>.</summary>
    public static void Backward(ScanParams p, int width)
    {
        switch (width)
        {
            case 16: ScanBackward.Run<Simd512, Vector512<float>>(p); break;
            case 8: ScanBackward.Run<Simd256, Vector256<float>>(p); break;
            default: ScanBackward.Run<SimdScalar, float>(p); break;
        }
    }
}
