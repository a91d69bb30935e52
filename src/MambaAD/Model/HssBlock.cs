using MambaAD.Ssm;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>HSS block (spec §6): X + DropPath(SS2D(LayerNorm(X))), channels-last (B, H, W, C).</summary>
internal sealed class HssBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm ln_1;
    private readonly Ss2d self_attention;
    private readonly DropPath drop_path;

    public HssBlock(long dim, int side, double dropPath = 0, ScanType scanType = ScanType.Hilbert, int directions = 8, long dState = 16)
        : base(nameof(HssBlock))
    {
        ln_1 = nn.LayerNorm(dim, eps: 1e-5);
        self_attention = new Ss2d(dim, side, scanType, directions, dState);
        drop_path = new DropPath(dropPath);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // DropPath's mask is drawn before the branch (which draws no random numbers, so the draws are timm's), and the
        // branch runs on the kept samples only: a dropped sample's branch is multiplied by 0, so computing it, forward
        // and backward, changes nothing but the time (the decoder's 16 blocks drop 2.7–20 % of their samples each).
        // With every sample kept, or none (its parameters must still get their zero gradient), the whole batch runs.
        var mask = drop_path.Mask(x);
        if (mask is null) return (x + self_attention.call(ln_1.call(x))).MoveToOuterDisposeScope();
        var keptIndex = mask.flatten().nonzero().flatten();
        long kept = keptIndex.shape[0];
        if (kept == x.shape[0] || kept == 0)
            return (x + self_attention.call(ln_1.call(x)) * mask).MoveToOuterDisposeScope();
        var keptBranch = self_attention.call(ln_1.call(x.index_select(0, keptIndex))) * mask.index_select(0, keptIndex);
        return x.index_add(0, keptIndex, keptBranch, 1).MoveToOuterDisposeScope();
    }

    internal LayerNorm Ln1 => ln_1;
    internal Ss2d SelfAttention => self_attention;
}
