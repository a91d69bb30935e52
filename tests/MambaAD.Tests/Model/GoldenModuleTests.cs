using MambaAD.IO;

using MambaAD.Model;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// Each module against the official PyTorch module on the same weights and inputs (../shared/golden/modules.pt):
/// forward, the gradient of the input and of every parameter under loss = Σ(output ⊙ loss_weight).
/// Tolerances (golden README): rtol 1e-4, atol 1e-4·max|ref|; gradients that are analytically zero (biases before a
/// norm) carry only float32 noise and are compared with an absolute bound relative to the module's gradient scale.
/// </summary>
[Collection("Torch")]
public class GoldenModuleTests
{
    private static GoldenFile G => GoldenFile.Open("modules.pt");

    private static void LoadCase<T>(T module, string name) where T : nn.Module =>
        StateDict.Load(module, G.Dict($"{name}/state_dict"), $"modules.pt:{name}");

    /// <summary>Runs backward of Σ(output ⊙ loss_weight) and checks the input and parameter gradients.</summary>
    private static void CheckGradients(nn.Module module, Tensor input, Tensor output, string name, string inputGradKey = "input_grad")
    {
        using var loss = (output * G[$"{name}/loss_weight"]).sum();
        loss.backward();
        Close.Forward(input.grad!, G[$"{name}/{inputGradKey}"], $"{name} input grad");
        CheckParamGrads(module, name);
    }

    private static void CheckParamGrads(nn.Module module, string name)
    {
        var expected = G.Dict($"{name}/param_grads");
        var grads = StateDict.Ordered(module).Where(e => expected.ContainsKey(e.Name)).ToList();
        Assert.NotEmpty(grads);
        double scale = expected.Values.Max(t => t.abs().max().item<float>());
        foreach (var (pname, p) in grads)
        {
            var g = p.grad ?? throw new Xunit.Sdk.XunitException($"{name}: {pname} has no gradient");
            var e = expected[pname];
            if (e.abs().max().item<float>() < 1e-9 * scale)
                Assert.True(g.abs().max().item<float>() <= 1e-4 * scale, $"{name}: analytically zero gradient {pname} is {g.abs().max().item<float>():G3}");
            else
                Close.Forward(g, e, $"{name} grad {pname}");
        }
    }

    private static Tensor Input(string key) => G[key].clone().requires_grad_(true);

    [GoldenFact]
    public void ScanPermutationsMatchTheOfficialCode()
    {
        foreach (var type in Enum.GetValues<ScanType>())
            foreach (int side in new[] { 4, 8, 16 })
            {
                string key = $"scan_perms/{ScanOrder.Name(type)}_{side}";
                Assert.Equal(G[$"{key}/locs"].data<long>().ToArray(), ScanOrder.Locs(type, side));
                Assert.Equal(G[$"{key}/locs_inv"].data<long>().ToArray(), ScanOrder.LocsInverse(type, side));
                Assert.Equal(G[$"{key}/directions"].data<long>().ToArray(), ScanOrder.Paths(type, side, 8));
            }
    }

    [GoldenFact]
    public void PatchExpandMatches()
    {
        using var scope = NewDisposeScope();
        using var m = new PatchExpand2D(64);
        LoadCase(m, "patch_expand");
        var x = Input("patch_expand/input");
        var y = m.call(x);
        Close.Forward(y, G["patch_expand/output"], "patch_expand output");
        CheckGradients(m, x, y, "patch_expand");
    }

    [GoldenTheory]
    [InlineData(8)]
    [InlineData(16)]
    public void HssBlockMatches(int side)
    {
        using var scope = NewDisposeScope();
        string name = $"hss_{side}x{side}";
        using var m = new HssBlock(64, side);
        LoadCase(m, name);
        var x = Input($"{name}/input");
        var y = m.call(x);
        Close.Forward(y, G[$"{name}/output"], $"{name} output");
        CheckGradients(m, x, y, name);
    }

    [GoldenFact]
    public void HssBlockIntermediatesMatch()
    {
        using var scope = NewDisposeScope();
        const string name = "hss_8x8";
        using var m = new HssBlock(64, 8);
        LoadCase(m, name);
        using var _ = no_grad();
        var ss2d = m.SelfAttention;
        var lnOut = m.Ln1.call(G[$"{name}/input"]);
        Close.Forward(lnOut, G[$"{name}/intermediates/ln_1_out"], "ln_1_out");
        var act = G[$"{name}/intermediates/act_out"];
        var core = ss2d.ForwardCore(act.permute(0, 2, 3, 1).reshape(2, 64, 128));   // (B, L, d) pixel order
        Close.Forward(core.reshape(2, 8, 8, 128), G[$"{name}/intermediates/forward_core_out_bhwd"], "forward_core_out");
        var paths = tensor(ScanOrder.Paths(ScanType.Hilbert, 8, 8), dtype: int64).reshape(8, 64);
        var scanU = HybridScan.Gather(act.reshape(2, 128, 64), paths).reshape(2, 1024, 64);
        Close.Forward(scanU, G[$"{name}/intermediates/scan_u"], "scan_u (HS encoder)");
        Close.Forward(ss2d.call(lnOut), G[$"{name}/intermediates/ss2d_out"], "ss2d_out");
    }

    [GoldenFact]
    public void HssBlockMatchesInFloat64() // the port computes the same function: f64 agrees to ~1e-10
    {
        using var scope = NewDisposeScope();
        const string name = "hss_8x8";
        using var m = new HssBlock(64, 8);
        LoadCase(m, name);
        m.to(float64);
        var x = G[$"{name}/input"].to(float64).requires_grad_(true);
        var y = m.call(x);
        Close.Check(y, G[$"{name}/f64/output"], 0, Close.OfMax(G[$"{name}/f64/output"], 1e-9), "hss_8x8 f64 output");
        using var loss = (y * G[$"{name}/loss_weight"].to(float64)).sum();
        loss.backward();
        Close.Check(x.grad!, G[$"{name}/f64/input_grad"], 0, Close.OfMax(G[$"{name}/f64/input_grad"], 1e-9), "hss_8x8 f64 input grad");
    }

    [GoldenFact]
    public void LssModuleMatches()
    {
        using var scope = NewDisposeScope();
        const string name = "lss_16x16";
        using var m = new LssModule(64, 3, 16);
        LoadCase(m, name);
        var x = Input($"{name}/input");
        var y = m.call(x);
        Close.Forward(y, G[$"{name}/output"], "lss output");
        using (no_grad()) Close.Forward(m.call(x), G[$"{name}/output"], "lss output without autograd (fused IN + SiLU)");
        CheckGradients(m, x, y, name);
    }

    [GoldenFact]
    public void MffOceMatchesInEvalAndTrain()
    {
        using var scope = NewDisposeScope();
        const string name = "mff_oce";
        using var m = new MffOce([64, 128, 256]);
        LoadCase(m, name);
        m.eval();
        using (no_grad())
            Close.Forward(m.call([G[$"{name}/input_F1"], G[$"{name}/input_F2"], G[$"{name}/input_F3"]]), G[$"{name}/output_eval"], "mff_oce eval");
        m.train();
        var f = new[] { Input($"{name}/input_F1"), Input($"{name}/input_F2"), Input($"{name}/input_F3") };
        var y = m.call(f);
        Close.Forward(y, G[$"{name}/output_train"], "mff_oce train");
        using var loss = (y * G[$"{name}/loss_weight"]).sum();
        loss.backward();
        for (int i = 0; i < 3; i++) Close.Forward(f[i].grad!, G[$"{name}/input_grad_F{i + 1}"], $"mff_oce input grad F{i + 1}");
        CheckParamGrads(m, name);
        var after = G.Dict($"{name}/bn_buffers_after_train");
        var mine = StateDict.Ordered(m).ToDictionary(e => e.Name, e => e.Tensor);
        foreach (var (k, v) in after) Close.Forward(mine[k], v.reshape(mine[k].shape), $"mff_oce buffer {k}");
    }

    [GoldenFact]
    public void AnomalyMapMatchesTheOfficialPostProcessing()
    {
        using var scope = NewDisposeScope();
        const string p = "postprocess";
        var ft = new[] { G[$"{p}/ft_1"], G[$"{p}/ft_2"], G[$"{p}/ft_3"] };
        var fs = new[] { G[$"{p}/fs_1"], G[$"{p}/fs_2"], G[$"{p}/fs_3"] };
        var raw = AnomalyMap.Raw(ft, fs, 256);
        Close.Forward(raw, G[$"{p}/amap_raw"], "amap_raw");
        var result = AnomalyMap.Smooth(raw);
        Close.Forward(tensor(result.Maps, [result.Count, result.Height, result.Width]), G[$"{p}/amap"], "amap");
        Close.Forward(tensor(result.Scores), G[$"{p}/image_scores"], "image scores");
    }

    [GoldenFact]
    public void GaussianFilterMatchesScipyOnANonSquareImage()
    {
        var input = G["postprocess/gauss_only_in"];
        var data = input.data<double>().ToArray();
        GaussianFilter.Apply(data, 64, 80);
        Close.Check(tensor(data).reshape(64, 80), G["postprocess/gauss_only_out"], 0, Close.OfMax(G["postprocess/gauss_only_out"], 1e-12), "gaussian_filter σ=4");
    }

    [GoldenFact]
    public void BilinearAlignCornersResizeMatches()
    {
        using var scope = NewDisposeScope();
        var up = nn.functional.interpolate(G["postprocess/resize_only_in"], size: [256, 256], mode: InterpolationMode.Bilinear, align_corners: true);
        Close.Check(up, G["postprocess/resize_only_out"], 0, Close.OfMax(G["postprocess/resize_only_out"], 1e-12), "bilinear align_corners");
    }
}
