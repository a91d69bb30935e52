using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// NormGate, SS2D's out_norm(y) · SiLU(z) fused both ways: its forward and its four gradients agree with libtorch's
/// composition and autograd in float64 (the oracle) as closely as libtorch's own float32 ops do, at the model's shapes
/// and at pixel counts that are not a whole number of tasks; the forward is the same bits with and without autograd;
/// the weight gradients are the same bits run to run and at one or two threads.
/// </summary>
public class NormGateTests
{
    private const double Eps = 1e-5;

    public static IEnumerable<object[]> Shapes() =>
        [[2, 8, 8, 1024], [2, 16, 16, 512], [1, 32, 32, 256], [1, 64, 64, 128], [3, 5, 7, 32], [1, 2, 3, 24], [1, 3, 3, 8]];   // B, H, W, d

    /// <summary>y off-centre with a spread, z over SiLU's curved range and both tails, a non-trivial affine.</summary>
    private static Tensor[] Inputs(int b, int h, int w, int d, ScalarType dtype = ScalarType.Float32)
    {
        var gen = new Generator(5);
        return [(2 * randn(b, h, w, d, generator: gen) + 0.5).to(dtype), (4 * randn(b, h, w, d, generator: gen)).to(dtype),
            (1 + 0.2 * randn(d, generator: gen)).to(dtype), (0.1 * randn(d, generator: gen)).to(dtype),
            randn(b, h, w, d, generator: gen).to(dtype)];
    }

    private static Tensor[] Leaves(Tensor[] inputs, ScalarType dtype) =>
        inputs.Take(4).Select(t => t.detach().to(dtype).requires_grad_(true)).ToArray();

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gradients_agree_with_libtorch_autograd_in_float64(int b, int h, int w, int d)
    {
        using var scope = NewDisposeScope();
        var inputs = Inputs(b, h, w, d);
        var g = inputs[4];

        var oracle = Leaves(inputs, ScalarType.Float64);
        NormGate.Reference(oracle[0], oracle[1], oracle[2], oracle[3], Eps).backward([g.to(float64)]);
        var plain = Leaves(inputs, ScalarType.Float32);
        var yPlain = NormGate.Reference(plain[0], plain[1], plain[2], plain[3], Eps);
        yPlain.backward([g]);

        var t = Leaves(inputs, ScalarType.Float32);
        Assert.True(NormGate.TakesThisNode(t[0], t[1], t[2], t[3]));
        var y = NormGate.Apply(t[0], t[1], t[2], t[3], Eps);
        // The upstream gradient arrives through a permute: not contiguous.
        y.permute(0, 3, 1, 2).backward([g.permute(0, 3, 1, 2)]);

        // Tolerance: a few times libtorch's own float32 error against the oracle, at least 1e-6 of the largest value.
        var yOracle = NormGate.Reference(oracle[0], oracle[1], oracle[2], oracle[3], Eps).detach();
        double plainForward = Close.RelativeToMax(yPlain.detach(), yOracle);
        Close.Check(y.detach(), yOracle, 0, Close.OfMax(yOracle, Math.Max(1e-6, 4 * plainForward)), "forward");
        using (no_grad()) Close.Check(NormGate.Apply(t[0], t[1], t[2], t[3], Eps), y.detach(), 0, 0, "forward without autograd");
        string[] names = ["dy", "dz", "dweight", "dbias"];
        for (int i = 0; i < 4; i++)
        {
            double plainError = Close.RelativeToMax(plain[i].grad!, oracle[i].grad!);
            Close.Check(t[i].grad!, oracle[i].grad!, 0, Close.OfMax(oracle[i].grad!, Math.Max(1e-6, 4 * plainError)), names[i]);
        }
    }

    [Fact]
    public void Gradients_are_the_same_bits_run_to_run_and_at_one_or_two_threads()
    {
        using var scope = NewDisposeScope();
        var x = Inputs(3, 16, 16, 256);
        var first = NormGate.Backward(x[0], x[1], x[2], x[3], x[4], Eps);
        foreach (int n in new[] { 1, 2, get_num_threads() })
        {
            var again = AtThreads.Run(n, () => NormGate.Backward(x[0], x[1], x[2], x[3], x[4], Eps));
            Close.Check(again.Dy, first.Dy, 0, 0, $"dy at {n} threads");
            Close.Check(again.Dz, first.Dz, 0, 0, $"dz at {n} threads");
            Close.Check(again.Dw, first.Dw, 0, 0, $"dweight at {n} threads");
            Close.Check(again.Db, first.Db, 0, 0, $"dbias at {n} threads");
        }
    }

    [Fact]
    public void Float64_and_odd_widths_take_libtorchs_own_path_and_no_grad_the_kernel()
    {
        using var scope = NewDisposeScope();
        var d64 = Leaves(Inputs(1, 3, 3, 16, ScalarType.Float64), ScalarType.Float64);
        Assert.False(NormGate.TakesThisNode(d64[0], d64[1], d64[2], d64[3]));
        NormGate.Apply(d64[0], d64[1], d64[2], d64[3], Eps).sum().backward();
        Assert.NotNull(d64[2].grad);

        var odd = Leaves(Inputs(1, 3, 3, 12), ScalarType.Float32);   // 12 channels: not a whole number of vectors
        Assert.False(NormGate.TakesThisNode(odd[0], odd[1], odd[2], odd[3]));

        using (no_grad())
        {
            var f = Leaves(Inputs(1, 3, 3, 16), ScalarType.Float32);
            Assert.False(NormGate.TakesThisNode(f[0], f[1], f[2], f[3]));
            var y = NormGate.Apply(f[0], f[1], f[2], f[3], Eps);
            Assert.False(y.requires_grad);
            Close.Check(y, NormGate.Forward(f[0], f[1], f[2], f[3], Eps), 0, 0, "no_grad forward");
            var oddY = NormGate.Apply(odd[0], odd[1], odd[2], odd[3], Eps);
            Close.Check(oddY, NormGate.Reference(odd[0], odd[1], odd[2], odd[3], Eps), 0, 0, "odd width without autograd");
        }
    }
}
