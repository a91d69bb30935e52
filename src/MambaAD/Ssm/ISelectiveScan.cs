using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The selective-scan op of spec §7.3, in the argument convention of mamba's <c>selective_scan_ref</c>.
/// Shapes: Bt batch, Dt = K·d_inner channels, G = K groups (directions), N states, L steps.
/// <list type="bullet">
/// <item><c>u</c> (Bt, Dt, L), <c>delta</c> (Bt, Dt, L) before bias and softplus</item>
/// <item><c>A</c> (Dt, N) (already −exp(A_log)), <c>B</c>, <c>C</c> (Bt, G, N, L): shared by the Dt/G channels of a group</item>
/// <item><c>D</c> (Dt), <c>deltaBias</c> (Dt)</item>
/// </list>
/// Returns y (Bt, Dt, L): h_t = exp(δ_t A) h_{t−1} + δ_t B_t u_t, y_t = C_t·h_t + D u_t, δ = softplus(delta + bias).
/// Everything is float32; implementations are interchangeable and differentiable in every tensor input.
/// </summary>
public interface ISelectiveScan
{
    /// <summary>The plain op over already-permuted sequences.</summary>
    Tensor Scan(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, bool deltaSoftplus = true);

    /// <summary>
    /// HS encoder → scan → HS decoder → sum over directions (spec §8.2–8.3) in one call, so a kernel can fold the
    /// gathers and scatters into its reads and writes. All sequence inputs are in <b>pixel order</b> (row-major):
    /// <c>u</c> (Bt, d, L) is shared by the K directions; <c>delta</c> (Bt, K, d, L); <c>B</c>, <c>C</c> (Bt, K, N, L);
    /// <c>A</c> (K·d, N); <c>D</c>, <c>deltaBias</c> (K·d); <c>paths</c> (K, L) int64 with paths[k, t] = π_k[t], the
    /// pixel direction k reads at step t. Returns (Bt, d, L) in pixel order: y[π_k[t]] += y_k[t] over k and t.
    /// </summary>
    Tensor ScanAndMerge(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, Tensor paths);

    /// <summary>
    /// <see cref="ScanAndMerge"/> with the Δ projection of spec §7.2 folded in, channels-last, as SS2D calls it:
    /// <c>u</c> (Bt, L, d) pixel order; <c>xDbl</c> (Bt, L, K, R + 2N) holds [x_r | B | C] of every pixel and
    /// direction (the x_proj output, pixel-major); <c>dtWeight</c> (K, d, R) the dt_projs weights, delta =
    /// dtWeight[k] · x_r; <c>A</c> (K·d, N), <c>D</c>, <c>deltaBias</c> (K·d), <c>paths</c> (K, L). Returns y (Bt, L, d).
    /// A kernel may then never materialise the (Bt, K, d, L) delta (nor keep it for the backward), nor transpose u
    /// and y. Differentiable in u, xDbl, dtWeight, A, D and deltaBias.
    /// </summary>
    Tensor ScanAndMergeProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckProjected(u, xDbl, dtWeight, A, D, deltaBias, paths);
        using var scope = NewDisposeScope();
        var (delta, b, c) = ScanShapes.Unproject(xDbl, dtWeight, A.shape[1]);
        return ScanAndMerge(u.transpose(1, 2), delta, A, b, c, D, deltaBias, paths).transpose(1, 2).MoveToOuterDisposeScope();
    }
}
