using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// Stochastic depth per sample (timm's DropPath, spec §4): in training, each sample's residual branch is kept with
/// probability 1 − p and scaled by 1/(1 − p); the identity in eval.
/// </summary>
internal sealed class DropPath : nn.Module<Tensor, Tensor>
{
    /// <summary>The drop probability p.</summary>
    public double Probability { get; }

    public DropPath(double probability) : base(nameof(DropPath))
    {
        if (probability is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(probability), probability, "drop-path probability must be in [0, 1)");
        Probability = probability;
    }

    public override Tensor forward(Tensor x)
    {
        using var mask = Mask(x);
        return mask is null ? x.alias() : x * mask;
    }

    /// <summary>
    /// The per-sample factors (B, 1, …, 1) that <see cref="forward"/> multiplies x by, 0 or 1/(1 − p), drawn from the
    /// global generator as timm draws them; null when the module is the identity (eval, or p = 0). Shaped like x's
    /// batch, so it can be drawn before x's branch is computed (<see cref="HssBlock"/>).
    /// </summary>
    public Tensor? Mask(Tensor x)
    {
        if (!training || Probability == 0) return null;
        double keep = 1 - Probability;
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = x.shape[0];
        return empty(shape, dtype: x.dtype, device: x.device).bernoulli_(keep).div_(keep);
    }
}
