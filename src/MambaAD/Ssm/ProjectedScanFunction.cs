using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The autograd node of <see cref="SelectiveScanCpu.ScanAndMergeProjected"/>: the forward keeps u, xDbl, dtWeight,
/// A, D, the bias, the paths and the chunk states (not δ); the backward kernel recomputes δ from xDbl per chunk and
/// returns the gradients of u, xDbl, dtWeight, A, D and the bias.
/// </summary>
internal sealed class ProjectedScanFunction : torch.autograd.SingleTensorFunction<ProjectedScanFunction>
{
    public override string Name => "MambaAD.SelectiveScanCpuProjected";

    /// <summary>vars: u, xDbl, dtWeight, A, D, deltaBias, paths (tensors), then the kernel width (int).</summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, xDbl, dtW, A, D, bias, paths) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3],
            (Tensor)vars[4], (Tensor)vars[5], (Tensor)vars[6]);
        int width = (int)vars[7];
        var (y, h) = ProjectedScanOp.Forward(u, xDbl, dtW, A, D, bias, paths, saveStates: true, width);
        ctx.save_for_backward([u, xDbl, dtW, A, D, bias, h!, paths]);
        ctx.save_data("width", width);
        return y;
    }

    /// <summary>Gradients in the order of the forward's tensor inputs; none for the paths and the width.</summary>
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var s = ctx.get_saved_variables();
        var (u, xDbl, dtW, A, D, bias, h, paths) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        var res = ProjectedScanOp.Backward(grad, u, xDbl, dtW, A, D, bias, paths, h, (int)ctx.get_data("width"));
        return [.. res, null!, null!];
    }
}
