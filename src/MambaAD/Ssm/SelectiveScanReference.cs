using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The obviously-correct selective scan (spec §7.3, §8.2–8.3), built from plain differentiable torch ops: sequential
/// over L, vectorised over batch, channel and state. <see cref="Scan"/> follows mamba's <c>selective_scan_ref</c>
/// argument for argument (delta_softplus on, z none, as SS2D calls it); <see cref="ScanAndMerge"/> wraps it in the HS
/// encoder and decoder; <see cref="ScanAndMergeProjected"/> adds the Δ projection. It is the oracle every kernel is
/// tested against, and it serves tensors the kernel does not take (CUDA, float64). Memory: it materialises exp(δA)
/// and δBu as (Bt, Dt, L, N).
/// </summary>
internal sealed class SelectiveScanReference : ISelectiveScan
{
    public static readonly SelectiveScanReference Instance = new();

    /// <summary>
    /// <c>u</c> (Bt, Dt, L), <c>delta</c> (Bt, Dt, L) before bias and softplus, <c>A</c> (Dt, N), <c>B</c>, <c>C</c>
    /// (Bt, G, N, L) shared by the Dt/G channels of a group, <c>D</c> and <c>deltaBias</c> (Dt). Returns y (Bt, Dt, L).
    /// </summary>
    public Tensor Scan(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias)
    {
        ScanShapes.Check(u, delta, A, B, C, D, deltaBias);
        using var scope = NewDisposeScope();
        long bt = u.shape[0], dt = u.shape[1], l = u.shape[2], g = B.shape[1], n = A.shape[1];
        var dl = nn.functional.softplus(delta + deltaBias.unsqueeze(-1));   // β = 1, linear above 20 (§7.3 step 3)
        // B and C are shared by the Dt/G channels of their group: repeat them per channel.
        var bExp = B.repeat_interleave(dt / g, dim: 1);            // (Bt, Dt, N, L)
        var cExp = C.repeat_interleave(dt / g, dim: 1);
        var deltaA = exp(einsum("bdl,dn->bdln", dl, A));           // zero-order hold for A (§7.3 step 5)
        var deltaBu = einsum("bdl,bdnl,bdl->bdln", dl, bExp, u);    // Euler for B: B̄ = δB
        var aSteps = deltaA.unbind(2);
        var buSteps = deltaBu.unbind(2);
        var cSteps = cExp.unbind(3);
        var h = zeros(bt, dt, n, dtype: u.dtype, device: u.device);
        var ys = new Tensor[l];
        for (int t = 0; t < l; t++)
        {
            h = aSteps[t] * h + buSteps[t];
            ys[t] = einsum("bdn,bdn->bd", h, cSteps[t]);
        }
        var y = stack(ys, dim: 2) + u * D.unsqueeze(-1);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HS encoder → <see cref="Scan"/> → HS decoder → sum over directions (spec §8.2–8.3), in pixel order: <c>u</c>
    /// (Bt, d, L) shared by the K directions, <c>delta</c> (Bt, K, d, L), <c>B</c>, <c>C</c> (Bt, K, N, L), <c>A</c>
    /// (K·d, N), <c>D</c>, <c>deltaBias</c> (K·d), <c>paths</c> (K, L). Returns (Bt, d, L): y[π_k[t]] += y_k[t].
    /// </summary>
    public Tensor ScanAndMerge(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckMerge(u, delta, A, B, C, D, deltaBias, paths);
        using var scope = NewDisposeScope();
        long bt = u.shape[0], d = u.shape[1], l = u.shape[2], k = paths.shape[0];
        var pathsDev = paths.to(u.device);
        var us = HybridScan.Gather(u, pathsDev).reshape(bt, k * d, l);
        var deltas = HybridScan.GatherPerDirection(delta, pathsDev).reshape(bt, k * d, l);
        var bs = HybridScan.GatherPerDirection(B, pathsDev);
        var cs = HybridScan.GatherPerDirection(C, pathsDev);
        var ys = Scan(us, deltas, A, bs, cs, D, deltaBias).reshape(bt, k, d, l);
        return HybridScan.Merge(ys, pathsDev).MoveToOuterDisposeScope();
    }

    /// <summary>The op of <see cref="ISelectiveScan"/>: Δ = dtWeight[k]·x_r by einsum, B and C split from xDbl, then <see cref="ScanAndMerge"/>.</summary>
    public Tensor ScanAndMergeProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckProjected(u, xDbl, dtWeight, A, D, deltaBias, paths);
        using var scope = NewDisposeScope();
        long r = dtWeight.shape[2], n = A.shape[1];
        var split = xDbl.permute(0, 2, 3, 1).split([r, n, n], dim: 2);   // (Bt, K, ·, L)
        var delta = einsum("kdr,bkrl->bkdl", dtWeight, split[0]);
        return ScanAndMerge(u.transpose(1, 2), delta, A, split[1], split[2], D, deltaBias, paths).transpose(1, 2)
            .MoveToOuterDisposeScope();
    }
}
