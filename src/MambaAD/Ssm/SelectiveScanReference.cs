using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The obviously-correct selective scan (spec §7.3), built from plain differentiable torch ops: sequential over L,
/// vectorised over batch, channel and state. It follows mamba's <c>selective_scan_ref</c> argument for argument and
/// is the oracle every faster implementation is tested against. It also serves tensors the fast kernel does not
/// take (CUDA, float64). Memory: it materialises exp(δA) and δBu as (Bt, Dt, L, N).
/// </summary>
public sealed class SelectiveScanReference : ISelectiveScan
{
    public static readonly SelectiveScanReference Instance = new();

    public Tensor Scan(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, bool deltaSoftplus = true)
    {
        ScanShapes.Check(u, delta, A, B, C, D, deltaBias);
        using var scope = NewDisposeScope();
        long bt = u.shape[0], dt = u.shape[1], l = u.shape[2], g = B.shape[1], n = A.shape[1];
        var dl = delta + deltaBias.unsqueeze(-1);
        if (deltaSoftplus) dl = nn.functional.softplus(dl); // β = 1, linear above 20 (§7.3 step 3)
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

    public Tensor ScanAndMerge(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, Tensor paths)
        => HybridScan.ScanAndMergeByGather(this, u, delta, A, B, C, D, deltaBias, paths);
}
