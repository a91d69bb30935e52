using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// The training loss (spec §11): ℓ = 5 · Σ_s mean((F_s − D_s)²) over the three (encoder, decoder) pairs, encoder
/// features detached. The factor 5 is the official L2Loss weight; it matters through gradient clipping and Adam's ε.
/// </summary>
internal static class ReconstructionLoss
{
    public const double Weight = 5.0;

    public static Tensor Compute(IReadOnlyList<Tensor> encoder, IReadOnlyList<Tensor> decoder)
    {
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        for (int s = 0; s < encoder.Count; s++)
        {
            var mse = nn.functional.mse_loss(decoder[s], encoder[s].detach(), nn.Reduction.Mean);
            sum = sum is null ? mse : sum + mse;
        }
        return (Weight * sum!).MoveToOuterDisposeScope();
    }
}
