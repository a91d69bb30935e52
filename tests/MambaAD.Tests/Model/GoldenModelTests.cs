using MambaAD.Encoders;

using MambaAD.IO;

using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// The whole model against the official implementation (../shared/golden/full_model.pt): the official state_dict
/// loaded into the C# model, then every saved eval output and the training step (loss, per-scale MSE, gradient norms
/// and gradients). Tolerances from the golden README: forwards rtol 1e-4, atol 1e-4·max|ref|; full-model gradients
/// 1e-3·max|ref|; the 27 analytically-zero gradients (conv biases before a norm) by an absolute bound.
/// </summary>
[Collection("Torch")]
public class GoldenModelTests
{
    private static GoldenFile G => GoldenFile.Open("full_model.pt");

    private static MambaADModel LoadedModel(double dropPathRate = 0.2)
    {
        var model = new MambaADModel(new MambaADConfig { DropPathRate = dropPathRate });
        StateDict.Load(model, G.Dict("state_dict"), "full_model.pt");
        return model;
    }

    [GoldenFact]
    public void StateDictEqualsKeysTxt()
    {
        using var model = new MambaADModel();
        Assert.Equal(File.ReadAllLines(SharedData.Golden("keys.txt")), StateDict.KeyLines(model).ToArray());
        Assert.Equal(File.ReadAllLines(SharedData.Golden("keys.txt")).Select(l => l.Split('\t')[0]), model.state_dict().Keys);
    }

    [Fact]
    public void ParameterCountsMatchSection10()
    {
        using var model = new MambaADModel();
        Assert.Equal(17_444_928, model.TrainableParameters);
        Assert.Equal(8_170_304, model.FrozenParameters);
        Assert.Equal(25_654_528, model.TotalParameters);
    }

    [GoldenFact]
    public void EvalOutputsMatch()
    {
        using var scope = NewDisposeScope();
        using var model = LoadedModel();
        model.eval();
        var x = G["input"];
        using (no_grad())
        {
            var (f, d) = model.forward(x);
            for (int i = 0; i < 3; i++) Close.Forward(f[i], G[$"eval/F{i + 1}"], $"F{i + 1}");
            Close.Forward(model.Bottleneck.call(f), G["eval/Z"], "Z");
            Close.Forward(d[2], G["eval/D1"], "D1");
            Close.Forward(d[1], G["eval/D2"], "D2");
            Close.Forward(d[0], G["eval/D3"], "D3");
            for (int s = 0; s < 3; s++)
                Close.Forward(1 - nn.functional.cosine_similarity(f[s], d[s], dim: 1, eps: 1e-8), G[$"eval/amap_native_{s + 1}"], $"amap_native_{s + 1}");
            var raw = AnomalyMap.Raw(f, d, 256);
            Close.Forward(raw, G["eval/amap_raw"], "amap_raw");
        }
        var result = model.Predict(x);
        Close.Forward(tensor(result.Maps, [result.Count, result.Height, result.Width]), G["eval/amap"], "amap");
        Close.Forward(tensor(result.Scores), G["eval/image_scores"], "image_scores");
    }

    [GoldenFact]
    public void TrainingStepMatches()
    {
        using var scope = NewDisposeScope();
        using var model = LoadedModel(dropPathRate: 0); // the golden step ran with every DropPath at p = 0
        model.train();
        var loss = model.Loss(G["input"]);
        Close.Check(loss.reshape(1), G["train/loss"].reshape(1).to(float32), 1e-6, 0, "loss");
        loss.backward();

        var trainable = StateDict.Ordered(model).Where(e => e.Tensor.requires_grad).ToList();
        Assert.Equal(337, trainable.Count);
        Assert.All(trainable, e => Assert.NotNull(e.Tensor.grad));
        Assert.All(StateDict.Ordered(model.Encoder), e => Assert.Null(e.Tensor.grad));

        double total = Math.Sqrt(trainable.Sum(e => Math.Pow(e.Tensor.grad!.to(float64).norm().item<double>(), 2)));
        double expectedTotal = G["train/grad_total_norm"].item<double>();
        Assert.True(Math.Abs(total - expectedTotal) <= 1e-4 * expectedTotal, $"total grad norm {total} ≠ {expectedTotal}");

        var norms = G.Dict("train/grad_norms");
        double maxNorm = norms.Values.Max(t => t.item<double>());
        foreach (var (name, p) in trainable)
        {
            double expected = norms[name].item<double>(), actual = p.grad!.to(float64).norm().item<double>();
            double allowed = expected < 1e-9 * maxNorm ? 1e-4 * maxNorm : 1e-3 * expected + 1e-6 * maxNorm;
            Assert.True(Math.Abs(actual - expected) <= allowed, $"grad norm {name}: {actual:G6} ≠ {expected:G6}");
        }
        var byName = trainable.ToDictionary(e => e.Name, e => e.Tensor);
        foreach (var (name, g) in G.Dict("train/grads"))
        {
            if (norms[name].item<double>() < 1e-9 * maxNorm) // analytically zero: only float32 noise to bound
                Assert.True(byName[name].grad!.abs().max().item<float>() <= 1e-4 * maxNorm, $"zero gradient {name} is not ~0");
            else
                Close.Check(byName[name].grad!, g, 0, Close.OfMax(g, 1e-3), $"grad {name}");
        }

        var mine = StateDict.Ordered(model.Bottleneck).ToDictionary(e => e.Name, e => e.Tensor);
        foreach (var (k, v) in G.Dict("train/mff_oce_bn_buffers_after"))
            Close.Forward(mine[k], v.reshape(mine[k].shape), $"mff_oce buffer {k}");
    }

    [Fact]
    public void LoadingAMisfitCheckpointListsMissingUnexpectedAndMisShapedKeys()
    {
        using var scope = NewDisposeScope();
        using var model = new MambaADModel(new MambaADConfig { Backbone = Backbone.ResNet18, Depths = [2, 2, 2, 2] });
        var sd = StateDict.Ordered(model).ToDictionary(e => e.Name, e => e.Tensor);
        sd.Remove("mff_oce.conv1.weight");
        sd["net_t.layer4.0.conv1.weight"] = zeros(512, 256, 3, 3);
        sd["net_s.layers_up.1.upsample.expand.weight"] = zeros(3, 3);
        var ex = Assert.Throws<MambaADException>(() => StateDict.Load(model, sd, "other.pth"));
        Assert.Equal("other.pth does not fit this model: 1 missing (mff_oce.conv1.weight); 1 unexpected (net_t.layer4.0.conv1.weight); " +
                     "1 mis-shaped (net_s.layers_up.1.upsample.expand.weight (3, 3) ≠ (1024, 512)). " +
                     "Check the backbone, image size, depths, scan and directions against the configuration it was trained with.", ex.Message);
    }
}
