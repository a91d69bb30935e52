using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// Recompute (activation recomputation in a training step): the forward and every input gradient equal those of the
/// same function under plain autograd bit for bit, for an LSS local branch of conv → IN → SiLU three times (what the
/// model recomputes) and two more compositions of its kind (an out_norm·SiLU gate, a depth-wise conv + SiLU); inputs
/// without a gradient get none.
/// </summary>
public class RecomputeTests
{
    private static Tensor Gate(Tensor[] t) =>
        nn.functional.layer_norm(t[0], [t[0].shape[^1]], t[2], t[3], 1e-5) * nn.functional.silu(t[1]);

    private static Tensor ConvSilu(Tensor[] t) =>
        nn.functional.silu(nn.functional.conv2d(t[0], t[1], t[2], padding: [1, 1], groups: t[0].shape[1]));

    private static Tensor Step(Tensor x, Tensor w, Tensor? b)
    {
        long groups = x.shape[1] / w.shape[1], pad = w.shape[2] / 2;
        return nn.functional.silu(nn.functional.instance_norm(nn.functional.conv2d(x, w, b, padding: [pad, pad], groups: groups), eps: 1e-5));
    }

    private static Tensor Branch(Tensor[] t) => Step(Step(Step(t[0], t[1], t[2]), t[3], null), t[4], t[5]);

    public static IEnumerable<object[]> Cases() => [["gate"], ["conv-silu"], ["lss-branch"]];

    private static (Func<Tensor[], Tensor> F, Tensor[] Inputs) Case(string name)
    {
        var gen = new Generator(3);
        Tensor R(params long[] shape) => randn(shape, generator: gen);
        return name switch
        {
            "gate" => (Gate, [R(2, 5, 5, 12), R(2, 5, 5, 12), 1 + 0.1f * R(12), 0.1f * R(12)]),
            "conv-silu" => (ConvSilu, [R(2, 12, 6, 6), 0.3f * R(12, 1, 3, 3), 0.1f * R(12)]),
            "lss-branch" => (Branch, [R(2, 8, 7, 7), 0.3f * R(8, 8, 1, 1), 0.1f * R(8), 0.2f * R(8, 1, 5, 5), 0.3f * R(8, 8, 1, 1), 0.1f * R(8)]),
            _ => throw new ArgumentException(name),
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Recomputed_gradients_equal_plain_autograd_bit_for_bit(string name)
    {
        using var scope = NewDisposeScope();
        var (f, inputs) = Case(name);
        var g = randn(f(inputs).shape, generator: new Generator(5));

        var plain = inputs.Select(t => t.detach().requires_grad_(true)).ToArray();
        var yPlain = f(plain);
        yPlain.backward([g]);

        var leaves = inputs.Select(t => t.detach().requires_grad_(true)).ToArray();
        var y = Recompute.Run(f, leaves);
        y.backward([g]);

        Close.Check(y.detach(), yPlain.detach(), 0, 0, $"{name} forward");
        for (int i = 0; i < leaves.Length; i++)
            Close.Check(leaves[i].grad!, plain[i].grad!, 0, 0, $"{name} gradient of input {i}");
    }

    [Fact]
    public void Inputs_without_a_gradient_get_none_and_no_grad_runs_the_function()
    {
        using var scope = NewDisposeScope();
        var (f, inputs) = Case("gate");
        var leaves = inputs.Select((t, i) => t.detach().requires_grad_(i != 1)).ToArray();   // z frozen
        Recompute.Run(f, leaves).sum().backward();
        Assert.Null(leaves[1].grad);
        Assert.NotNull(leaves[0].grad);

        using (no_grad())
        {
            var y = Recompute.Run(f, leaves);
            Assert.False(y.requires_grad);
            Close.Check(y, f(inputs), 0, 0, "no_grad forward");
        }
    }
}
