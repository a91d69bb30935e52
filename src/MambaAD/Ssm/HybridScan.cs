using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The HS encoder and decoder of spec §8.2–8.3 as torch gathers and scatters along precomputed direction paths
/// (paths[k, t] = π_k[t], the pixel that direction k reads at step t), for the reference scan. The kernels fold the
/// same gathers into their reads and writes.
/// </summary>
internal static class HybridScan
{
    /// <summary>HS encoder: (Bt, d, L) pixel order → (Bt, K, d, L) with out[:, k, :, t] = x[:, :, π_k[t]].</summary>
    public static Tensor Gather(Tensor x, Tensor paths)
    {
        using var scope = NewDisposeScope();
        long k = paths.shape[0], l = paths.shape[1];
        var flat = x.index_select(2, paths.reshape(-1));             // (Bt, d, K·L)
        var res = flat.unflatten(2, [k, l]).permute(0, 2, 1, 3);     // (Bt, K, d, L)
        return res.MoveToOuterDisposeScope();
    }

    /// <summary>(Bt, K, c, L) pixel order → (Bt, K, c, L) scan order: direction k reads its own slice along π_k.</summary>
    public static Tensor GatherPerDirection(Tensor x, Tensor paths)
    {
        using var scope = NewDisposeScope();
        long bt = x.shape[0], k = x.shape[1], c = x.shape[2], l = x.shape[3];
        var idx = paths.reshape(1, k, 1, l).expand(bt, k, c, l);
        return x.gather(3, idx).MoveToOuterDisposeScope();
    }

    /// <summary>HS decoder + merge: (Bt, K, d, L) scan order → (Bt, d, L) pixel order, summing the K directions.</summary>
    public static Tensor Merge(Tensor y, Tensor paths)
    {
        using var scope = NewDisposeScope();
        long bt = y.shape[0], k = y.shape[1], d = y.shape[2], l = y.shape[3];
        var src = y.permute(0, 2, 1, 3).reshape(bt, d, k * l);
        var idx = paths.reshape(1, 1, k * l).expand(bt, d, k * l);
        var res = zeros(bt, d, l, dtype: y.dtype, device: y.device).scatter_add(2, idx, src);
        return res.MoveToOuterDisposeScope();
    }
}
