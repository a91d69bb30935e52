using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// One decoder stage (spec §4): an optional PatchExpand2D (stages 1–3) followed by LSS modules. The official
/// state_dict lists <c>blocks</c> before <c>upsample</c>, although the upsample runs first.
/// </summary>
internal sealed class DecoderStage : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.ModuleList<LssModule> blocks;
    private readonly PatchExpand2D? upsample;

    /// <param name="dim">The stage's channels C.</param>
    /// <param name="modules">Number of LSS modules.</param>
    /// <param name="hssPerModule">HSS blocks per LSS module.</param>
    /// <param name="side">The stage's feature map side.</param>
    /// <param name="dropPaths">One stochastic-depth value per LSS module.</param>
    /// <param name="upsample">Whether the stage starts with a PatchExpand2D (2C → C, side doubled).</param>
    /// <param name="scanType">The scan method of every HSS block (§8.1).</param>
    /// <param name="directions">K, the scan directions (2, 4 or 8).</param>
    /// <param name="dState">N, the SSM state size.</param>
    public DecoderStage(long dim, int modules, int hssPerModule, int side, IReadOnlyList<double> dropPaths, bool upsample,
        ScanType scanType, int directions, long dState) : base(nameof(DecoderStage))
    {
        blocks = nn.ModuleList(Enumerable.Range(0, modules)
            .Select(i => new LssModule(dim, hssPerModule, side, dropPaths[i], scanType, directions, dState)).ToArray());
        this.upsample = upsample ? new PatchExpand2D(dim) : null;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (upsample is not null) x = upsample.call(x);
        foreach (var block in blocks) x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }
}
