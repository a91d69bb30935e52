using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// PatchExpand2D (spec §4): (B, H, W, 2C) → Linear 2C→4C (no bias) → each 4C vector becomes a 2×2 block of C-vectors,
/// output pixel (2h+i, 2w+j) taking channels [(2i+j)·C, (2i+j+1)·C) → LayerNorm(C) → (B, 2H, 2W, C).
/// </summary>
internal sealed class PatchExpand2D : nn.Module<Tensor, Tensor>
{
    private readonly Linear expand;
    private readonly LayerNorm norm;

    /// <param name="dim">The output channels C (the input has 2C).</param>
    public PatchExpand2D(long dim) : base(nameof(PatchExpand2D))
    {
        expand = nn.Linear(2 * dim, 4 * dim, hasBias: false);
        norm = nn.LayerNorm(dim, eps: 1e-5);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], h = x.shape[1], w = x.shape[2];
        var y = expand.call(x);                                   // (B, H, W, 4C)
        long c = y.shape[3] / 4;
        y = y.view(b, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5)   // (B, H, i, W, j, C)
             .reshape(b, 2 * h, 2 * w, c);
        return norm.call(y).MoveToOuterDisposeScope();
    }
}
