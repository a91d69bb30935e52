using MambaAD.IO;

using MambaAD.Model;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>Pins the module structure: official state_dict names, order, shapes and dtypes; parameter counts (spec §10, §18).</summary>
[Collection("Torch")]
public class StructureTests
{
    private static string[] GoldenKeys(string prefix) =>
        File.ReadAllLines(SharedData.Golden("keys.txt")).Where(l => l.StartsWith(prefix)).Select(l => l[prefix.Length..]).ToArray();

    [GoldenFact]
    public void MffOceKeysMatchTheOfficialStateDict()
    {
        using var m = new MffOce([64, 128, 256]);
        Assert.Equal(GoldenKeys("mff_oce."), StateDict.KeyLines(m).ToArray());
    }

    [GoldenFact]
    public void DecoderKeysMatchTheOfficialStateDict()
    {
        using var m = new MambaDecoder([3, 4, 6, 3], 8);
        Assert.Equal(GoldenKeys("net_s."), StateDict.KeyLines(m).ToArray());
    }

    private static long Count(nn.Module m) => m.parameters().Sum(p => p.numel());

    [Fact]
    public void ParameterCountsMatchTheSpec()
    {
        using var mff = new MffOce([64, 128, 256]);
        Assert.Equal(1_458_304, Count(mff));
        using var dec = new MambaDecoder([3, 4, 6, 3], 8);
        Assert.Equal(15_986_624, Count(dec));
        long[] stages = [9_435_648, 4_425_728, 1_801_728, 323_520];
        Assert.Equal(stages, dec.Stages.Select(s => Count(s)).ToArray());
        // The int64 scan indices: 2·L per SS2D (spec §10).
        long indices = StateDict.Ordered(dec).Where(e => e.Name.Contains("scans.")).Sum(e => e.Tensor.numel());
        Assert.Equal(39_296, indices);
    }

    [Fact]
    public void DropPathScheduleAndModuleLayoutFollowTheSpec()
    {
        var dpr = MambaDecoder.DropPathSchedule([3, 4, 6, 3], 0.2);
        Assert.Equal(0.2, dpr[0], 12);
        Assert.Equal(0.16, dpr[3], 12);
        Assert.Equal(0.146667, dpr[4], 5);
        Assert.Equal(0.106667, dpr[7], 5);
        Assert.Equal(0.093333, dpr[8], 5);
        Assert.Equal(0.026667, dpr[13], 5);
        Assert.Equal((1, 3), MambaDecoder.ModuleLayout(3));
        Assert.Equal((2, 2), MambaDecoder.ModuleLayout(4));
        Assert.Equal((2, 3), MambaDecoder.ModuleLayout(6));
        Assert.Equal((3, 3), MambaDecoder.ModuleLayout(9));
        Assert.Throws<MambaADException>(() => MambaDecoder.ModuleLayout(5));
    }

    [Theory]
    [InlineData(new[] { 2, 2, 2, 2 }, 64)]
    [InlineData(new[] { 2, 9, 2, 2 }, 32)]
    [InlineData(new[] { 2, 2, 2, 2 }, 224)] // sides 7…56: Hilbert over the enclosing power-of-two curve
    public void AblationDepthsAndOtherSizesBuildAndRun(int[] depths, int imageSize)
    {
        using var scope = NewDisposeScope();
        using var dec = new MambaDecoder(depths, imageSize / 32, imageSize == 224 ? ScanType.Hilbert : ScanType.Zigzag, 4);
        dec.eval();
        using var _ = no_grad();
        var outs = dec.call(randn(1, 512, imageSize / 32, imageSize / 32));
        Assert.Equal(new long[] { 1, 64, imageSize / 4, imageSize / 4 }, outs[0].shape);
        Assert.Equal(new long[] { 1, 128, imageSize / 8, imageSize / 8 }, outs[1].shape);
        Assert.Equal(new long[] { 1, 256, imageSize / 16, imageSize / 16 }, outs[2].shape);
    }

    [Fact]
    public void InitialisationFollowsSection9()
    {
        using var dec = new MambaDecoder([3, 4, 6, 3], 8);
        var sd = StateDict.Ordered(dec).ToDictionary(e => e.Name, e => e.Tensor);
        const string blk = "layers_up.0.blocks.0.";
        const string ss = blk + "smm_blocks.0.self_attention.";
        double Std(string k) => sd[k].std().item<float>();
        Assert.InRange(Std(ss + "in_proj.weight"), 0.019, 0.021);                       // trunc-normal 0.02
        Assert.InRange(Std(blk + "conv1b7.0.weight"), 0.95 * Math.Sqrt(2.0 / 512), 1.05 * Math.Sqrt(2.0 / 512));
        Assert.InRange(Std(ss + "conv2d.weight"), 0.9 * Math.Sqrt(2.0 / 9), 1.1 * Math.Sqrt(2.0 / 9));
        Assert.Equal(0f, sd[ss + "conv2d.bias"].abs().max().item<float>());
        Assert.Equal(1f, sd[ss + "Ds"].min().item<float>());
        Assert.Equal(MathF.Log(16), sd[ss + "A_logs"][0, 15].item<float>(), 6);
        using var dt = nn.functional.softplus(sd[ss + "dt_projs_bias"]);
        Assert.InRange(dt.min().item<float>(), 0.99e-3, 0.1);
        Assert.InRange(dt.max().item<float>(), 1e-3, 0.1001);
        Assert.Equal(1f, sd[blk + "smm_blocks.0.ln_1.weight"].min().item<float>());
    }
}
