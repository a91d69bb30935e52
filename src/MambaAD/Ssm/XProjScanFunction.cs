using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The autograd node of <see cref="SelectiveScanCpu.ScanAndMergeXProj"/>: x_proj (spec §7.2, xDbl = u·Wᵀ) and the
/// projected scan as one node that keeps u and W, not xDbl. xDbl is (Bt, L, K, R + 2N), 2.5–4.5 × the size of u in the
/// default decoder, and the backward rebuilds it with one GEMM (a few ms of a step that takes seconds): ≈ 360 MB less
/// in a batch-16 training step at 256². Gradients are those of matmul + <see cref="ProjectedScanFunction"/>.
/// </summary>
internal sealed class XProjScanFunction : torch.autograd.SingleTensorFunction<XProjScanFunction>
{
    public override string Name => "MambaAD.XProjSelectiveScanCpu";

    /// <summary>vars: u, xProjWeight, dtWeight, A, D, deltaBias, paths (tensors), then the kernel width (int).</summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, xw, dtW, A, D, bias, paths) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3],
            (Tensor)vars[4], (Tensor)vars[5], (Tensor)vars[6]);
        int width = (int)vars[7];
        using var xDbl = XProj.Apply(u, xw);
        var (y, h) = ProjectedScanOp.Forward(u, xDbl, dtW, A, D, bias, paths, saveStates: true, width);
        ctx.save_for_backward([u, xw, dtW, A, D, bias, h!, paths]);
        ctx.save_data("width", width);
        return y;
    }

    /// <summary>Gradients of u, xProjWeight, dtWeight, A, D and the bias; none for the paths and the width.</summary>
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (u, xw, dtW, A, D, bias, h, paths) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        using var scope = NewDisposeScope();
        var xDbl = XProj.Apply(u, xw);
        var res = ProjectedScanOp.Backward(grad, u, xDbl, dtW, A, D, bias, paths, h, (int)ctx.get_data("width"));
        xDbl.Dispose();
        var (du, dXDbl) = (res[0], res[1]);
        var (dU, dW) = XProj.Backward(dXDbl, u, xw);
        dXDbl.Dispose();
        du.add_(dU);
        List<Tensor> grads = [du, dW, res[2], res[3], res[4], res[5]];
        foreach (var t in grads) t.MoveToOuterDisposeScope();
        return [.. grads, null!, null!];
    }
}

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
}
