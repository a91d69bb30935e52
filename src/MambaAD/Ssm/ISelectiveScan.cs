using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The selective-scan op SS2D calls (spec §7.2–7.3 with the §8.2 HS encoder and the §8.3 decoder and merge), over
/// all K directions at once, channels-last:
/// <list type="bullet">
/// <item><c>u</c> (Bt, L, d): the scanned sequence, pixel order (row-major), shared by the K directions</item>
/// <item><c>xDbl</c> (Bt, L, K, R + 2N): [x_r | B | C] of every pixel and direction (the x_proj output, pixel-major)</item>
/// <item><c>dtWeight</c> (K, d, R): the dt_projs weights, Δ = dtWeight[k]·x_r</item>
/// <item><c>A</c> (K·d, N) (already −exp(A_log)), <c>D</c> and <c>deltaBias</c> (K·d)</item>
/// <item><c>paths</c> (K, L) int64: paths[k, t] = π_k[t], the pixel direction k reads at step t</item>
/// </list>
/// Per direction k: δ_t = softplus(Δ_t + bias), h_t = exp(δ_t A) h_{t−1} + δ_t B_t u_{π(t)}, y_k,t = C_t·h_t + D u_{π(t)};
/// returns y (Bt, L, d) with y[π_k[t]] = Σ_k y_k,t. Differentiable in u, xDbl, dtWeight, A, D and deltaBias.
/// Implementations are interchangeable: <see cref="SelectiveScanCpu"/> (the kernels) and
/// <see cref="SelectiveScanReference"/> (plain torch ops, the oracle).
/// </summary>
internal interface ISelectiveScan
{
    Tensor ScanAndMergeProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths);

    /// <summary>
    /// <see cref="ScanAndMergeProjected"/> with x_proj folded in: xDbl = u·xProjWeightᵀ, xProjWeight (K, R + 2N, d).
    /// The same forward as x_proj followed by the scan; an implementation may keep u instead of xDbl for the backward.
    /// </summary>
    Tensor ScanAndMergeXProj(Tensor u, Tensor xProjWeight, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths) =>
        XProj.ThenScan(this, u, xProjWeight, dtWeight, A, D, deltaBias, paths);
}
