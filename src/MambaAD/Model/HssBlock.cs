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
        var branch = drop_path.call(self_attention.call(ln_1.call(x)));
        return (x + branch).MoveToOuterDisposeScope();
    }

    internal LayerNorm Ln1 => ln_1;
    internal Ss2d SelfAttention => self_attention;
}
