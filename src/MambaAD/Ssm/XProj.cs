using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>x_proj over all K directions at once (spec §7.2): u (Bt, L, d), W (K, R + 2N, d) → xDbl (Bt, L, K, R + 2N).</summary>
internal static class XProj
{
    /// <summary>One GEMM in pixel order (a broadcast batched matmul would copy the weights Bt times).</summary>
    public static Tensor Apply(Tensor u, Tensor w)
    {
        long k = w.shape[0], rs = w.shape[1], d = w.shape[2];
        return matmul(u, w.reshape(k * rs, d).t()).view(u.shape[0], u.shape[1], k, rs);
    }

    /// <summary>The gradients of u and W from the gradient of xDbl, as autograd forms them for <see cref="Apply"/>.</summary>
    public static (Tensor DU, Tensor DW) Backward(Tensor dXDbl, Tensor u, Tensor w)
    {
        long k = w.shape[0], rs = w.shape[1], d = w.shape[2], rows = u.shape[0] * u.shape[1];
        var g = dXDbl.reshape(rows, k * rs);
        var du = g.mm(w.reshape(k * rs, d)).view(u.shape);
        var dw = g.t().mm(u.reshape(rows, d)).view(k, rs, d);
        return (du, dw);
    }

    /// <summary>
    /// x_proj, then <see cref="ISelectiveScan.ScanAndMergeProjected"/> as its own op: what ScanAndMergeXProj computes
    /// wherever no fused autograd node applies (no gradient, the reference, tensors the kernel does not take).
    /// </summary>
    public static Tensor ThenScan(ISelectiveScan scan, Tensor u, Tensor w, Tensor dtWeight, Tensor A, Tensor D,
        Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckXProj(u, w, dtWeight, A, D, deltaBias, paths);
        using var scope = NewDisposeScope();
        var y = scan.ScanAndMergeProjected(u, Apply(u, w), dtWeight, A, D, deltaBias, paths);
        return y.MoveToOuterDisposeScope();
    }
}
