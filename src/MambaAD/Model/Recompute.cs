using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// Activation recomputation (torch.utils.checkpoint) for the cheap parts of a training step: the forward runs
/// <c>f</c> without autograd and keeps only its inputs; the backward runs <c>f</c> again with autograd on those inputs
/// and takes their gradients. <c>f</c>'s intermediate tensors (a norm's output, a SiLU's input) then never outlive
/// the forward. The recomputed forward is the same ops on the same values, so the gradients equal those of <c>f</c>
/// under autograd bit for bit. <c>f</c> must be deterministic and use only the tensors it is given (parameters
/// included), so that their gradients reach them.
/// </summary>
internal sealed class Recompute : torch.autograd.SingleTensorFunction<Recompute>
{
    public override string Name => "MambaAD.Recompute";

    /// <summary>f(inputs) with autograd through the recomputation; f itself when no input needs a gradient.</summary>
    public static Tensor Run(Func<Tensor[], Tensor> f, params Tensor[] inputs) =>
        is_grad_enabled() && inputs.Any(t => t.requires_grad) ? apply([f, .. inputs]) : f(inputs);

    /// <summary>vars: f, then its tensor inputs.</summary>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var f = (Func<Tensor[], Tensor>)vars[0];
        var inputs = vars.Skip(1).Cast<Tensor>().ToArray();
        ctx.save_for_backward([.. inputs]);
        ctx.save_data("f", f);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return f(inputs).MoveToOuterDisposeScope();
    }

    /// <summary>null for f, then the gradient of each input (null for those that need none).</summary>
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad)
    {
        var f = (Func<Tensor[], Tensor>)ctx.get_data("f");
        var saved = ctx.get_saved_variables();
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        var leaves = saved.Select(t => t.detach().requires_grad_(t.requires_grad)).ToArray();
        var needed = leaves.Where(t => t.requires_grad).ToArray();
        var grads = torch.autograd.grad([f(leaves)], needed, [grad]);
        var result = new List<Tensor> { null! };
        for (int i = 0, j = 0; i < leaves.Length; i++)
            result.Add(leaves[i].requires_grad ? grads[j++].MoveToOuterDisposeScope() : null!);
        return result;
    }
}
