using MambaAD.Ssm;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// The Mamba decoder (official class MambaUPNet, spec §4): four stages of LSS modules over dims [512, 256, 128, 64];
/// stages 1–3 start with a PatchExpand2D. Z (B, 512, s, s) → [D3, D2, D1] channels-first, high to low resolution
/// (the 8×8 stage-0 output is not returned).
/// </summary>
internal sealed class MambaDecoder : nn.Module<Tensor, Tensor[]>
{
    private readonly ModuleList<DecoderStage> layers_up;

    /// <summary>The decoder's stage widths (spec §4).</summary>
    public static readonly IReadOnlyList<long> Dims = [512, 256, 128, 64];

    public IReadOnlyList<int> Depths { get; }

    /// <param name="depths">HSS blocks per stage: [3,4,6,3] (default), [2,2,2,2] or [2,9,2,2].</param>
    /// <param name="bottleneckSide">Side of Z (image size / 32, i.e. 8 at 256²).</param>
    /// <param name="dropPathRate">The end of the reversed stochastic-depth schedule (0.2).</param>
    /// <param name="scanType">The scan method of every HSS block (§8.1).</param>
    /// <param name="directions">K, the scan directions (2, 4 or 8).</param>
    /// <param name="dState">N, the SSM state size.</param>
    public MambaDecoder(IReadOnlyList<int> depths, int bottleneckSide, ScanType scanType = ScanType.Hilbert, int directions = 8,
        long dState = 16, double dropPathRate = 0.2) : base("MambaUPNet")
    {
        if (depths.Count != 4) throw new MambaADException($"the decoder depths need 4 values (one per stage), e.g. 3,4,6,3; got {depths.Count}", nameof(MambaADConfig.Depths));
        Depths = depths.ToArray();
        var dpr = DropPathSchedule(depths, dropPathRate);
        var stages = new DecoderStage[4];
        for (int i = 0, offset = 0; i < 4; offset += depths[i], i++)
        {
            var (modules, perModule) = ModuleLayout(depths[i]);
            var slice = dpr.Skip(offset).Take(depths[i]).ToArray(); // module j takes slice[j] (§4), not one value per block
            stages[i] = new DecoderStage(Dims[i], modules, perModule, bottleneckSide << i, slice, upsample: i > 0,
                scanType, directions, dState);
        }
        layers_up = nn.ModuleList(stages);
        RegisterComponents();
        // §9 step 3: every Linear (in_proj, out_proj, PatchExpand's expand) → trunc-normal 0.02; every LayerNorm → 1/0.
        foreach (var m in modules())
        {
            if (m is Linear linear) ModelInit.TruncNormalLinear(linear);
            else if (m is LayerNorm norm) ModelInit.OnesZeros(norm.weight, norm.bias);
        }
    }

    /// <summary>A stage of depth d has d/3 modules of 3 HSS blocks if 3 divides d, else d/2 modules of 2 (§4).</summary>
    public static (int Modules, int HssPerModule) ModuleLayout(int depth) =>
        depth % 3 == 0 ? (depth / 3, 3)
        : depth % 2 == 0 ? (depth / 2, 2)
        : throw new MambaADException($"decoder depth {depth} cannot be split into LSS modules of 2 or 3 HSS blocks: use a multiple of 2 or 3 (e.g. 3,4,6,3)");

    /// <summary>linspace(0, rate, Σdepths), reversed (§4).</summary>
    public static double[] DropPathSchedule(IReadOnlyList<int> depths, double rate)
    {
        int total = depths.Sum();
        var dpr = new double[total];
        for (int i = 0; i < total; i++) dpr[i] = total == 1 ? 0 : rate * i / (total - 1);
        Array.Reverse(dpr);
        return dpr;
    }

    public override Tensor[] forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var x = z.permute(0, 2, 3, 1);                 // channels-last, no norm (§4)
        var outs = new List<Tensor>();
        int i = 0;
        foreach (var stage in layers_up)
        {
            x = stage.call(x);
            if (i++ > 0) outs.Insert(0, x.permute(0, 3, 1, 2));
        }
        var result = outs.ToArray();                   // [D3, D2, D1]
        foreach (var t in result) t.MoveToOuterDisposeScope();
        return result;
    }

    internal IEnumerable<DecoderStage> Stages => layers_up;
}
