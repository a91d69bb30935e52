namespace MambaAD.Ssm;

/// <summary>
/// Sizes and pointers of one call of the projected scan kernels (mamba's SSMParamsBase idea: one plain struct, not
/// 20 arguments). Bt batch, K directions, Dg channels (d_inner), N states, L steps, R the Δ rank (spec §7.1).
/// All pointers are contiguous float32 (paths int64) in the layouts below; <see cref="ProjectedScanOp"/> fills them.
/// </summary>
internal unsafe struct ScanParams
{
    public int Bt, K, Dg, N, L, R;
    /// <summary>Steps between stored chunk states (<see cref="ScanKernels.Chunk"/>).</summary>
    public int Chunk;
    /// <summary>u and y (Bt, L, Dg), channels-last, pixel order; y sums the K directions (spec §8.3).</summary>
    public float* U, Y;
    /// <summary>Step rows (Bt, K, L, R + 2N) in <b>scan order</b>: [x_r | B | C] of step t of direction k.</summary>
    public float* XS;
    /// <summary>Δ projection weights (K, Dg, R): Δ_t = Wdt[k]·x_r,t (spec §7.3 step 2).</summary>
    public float* Wdt;
    /// <summary>A (K·Dg, N) (already −exp(A_log)), D and the Δ bias (K·Dg).</summary>
    public float* A, D, Bias;
    /// <summary>Chunk-boundary states (Bt, K, blocks, NChunks, N, W), or null when no backward will follow.</summary>
    public float* H;
    /// <summary>(K, L): paths[k, t] = π_k[t], the pixel direction k reads at step t (spec §8.2).</summary>
    public long* Paths;
    // Backward only: g and du like u; dXDbl like xDbl, (Bt, L, K, R + 2N) in pixel order; per-batch partials dA
    // (Bt, K·Dg, N), dD, dBias (Bt, K·Dg), dWdt (Bt, K, Dg, R), summed over the batch by the caller (deterministic).
    public float* G, dU, dXDbl, dA, dD, dBias, dWdt;
    /// <summary>Backward only: the batch elements 0…Whole−1 run as one task each, the rest one task per direction
    /// (<see cref="ScanBackward.WholeElements"/>), each direction's du in DUK, (Bt − Whole, K, L, Dg) (null when Whole = Bt).</summary>
    public int Whole;
    public float* DUK;

    public readonly int NChunks => (L + Chunk - 1) / Chunk;
}
