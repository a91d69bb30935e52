using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The autograd node of <see cref="SelectiveScanCpu"/>'s two ops. For <see cref="SelectiveScanCpu.ScanAndMergeProjected"/>
/// the forward keeps u, xDbl's rows in scan order (the forward kernel's own input), dtWeight, A, D, the bias, the
/// paths and the chunk states (not δ); the backward kernel recomputes δ from those rows per chunk and returns the
/// gradients of u, xDbl, dtWeight, A, D and the bias. For <see cref="SelectiveScanCpu.ScanAndMergeXProj"/> (x_proj
/// folded in, spec §7.2) the second input is x_proj's weight W, kept too, and the backward turns xDbl's gradient into
/// those of u and W. Keeping the rows (2.5–4.5 × the size of u in the default decoder, ~0.4 GB for a batch-16 step at 256²)
/// rather than rebuilding them from u and W spares the backward a GEMM and a gather: 5 % of a step
/// (docs/performance.md, "Issue 14, phase 8").
/// </summary>
internal sealed class ProjectedScanFunction : torch.autograd.SingleTensorFunction<ProjectedScanFunction>
{
    public override string Name => "MambaAD.SelectiveScanCpuProjected";

    /// <summary>
    /// vars: u, xDbl or x_proj's weight, dtWeight, A, D, deltaBias, paths (tensors), then the kernel width (int) and
    /// whether the second input is x_proj's weight (bool).
    /// </summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, second, dtW, A, D, bias, paths) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3],
            (Tensor)vars[4], (Tensor)vars[5], (Tensor)vars[6]);
        var (width, xProj) = ((int)vars[7], (bool)vars[8]);
        using var built = xProj ? XProj.Apply(u, second) : null;
        var (y, h, xs) = ProjectedScanOp.Forward(u, built ?? second, dtW, A, D, bias, paths, saveStates: true, width);
        // xDbl itself is not kept (the backward reads xs); x_proj's weight is, last, for its gradient.
        ctx.save_for_backward([u, xs!, dtW, A, D, bias, h!, paths, .. (xProj ? new[] { second } : [])]);
        ctx.save_data("width", width);
        ctx.save_data("xProj", xProj);
        return y;
    }

    /// <summary>Gradients in the order of the forward's tensor inputs; none for the paths, the width and the flag.</summary>
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (u, xs, dtW, A, D, bias, h, paths) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        bool xProj = (bool)ctx.get_data("xProj");
        using var scope = NewDisposeScope();
        var res = ProjectedScanOp.Backward(grad, u, xs, dtW, A, D, bias, paths, h, (int)ctx.get_data("width"));
        if (xProj)
        {
            var (dU, dW) = XProj.Backward(res[1], u, s[8]);
            res[1].Dispose();
            res[0].add_(dU);
            res[1] = dW;
        }
        foreach (var t in res) t.MoveToOuterDisposeScope();
        return [.. res, null!, null!, null!];
    }
}
