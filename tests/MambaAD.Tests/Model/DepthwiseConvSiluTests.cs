using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// DepthwiseConvSilu, SS2D's depth-wise 3×3 conv + SiLU with its own fused backward: the gradients of x, weight and
/// bias agree with libtorch's autograd of the same composition in float64 (the reference) at the four SS2D shapes, an
/// odd map and a channel count that is not a whole number of vectors, at every kernel width; the forward is libtorch's
/// own to the bit; the results are the same bits run to run and at one or two threads; the rest takes libtorch's path.
/// </summary>
public class DepthwiseConvSiluTests
{
    // B, C, H, W, scale of x (30: pre-activations far into SiLU's flat and linear ends), channels-last memory.
    private static readonly object[][] ShapeList =
    [
        [1, 1024, 8, 8, 1f, true], [2, 512, 16, 16, 1f, true], [1, 256, 32, 32, 1f, true], [2, 128, 64, 64, 1f, true],
        [3, 32, 5, 7, 1f, false], [2, 20, 17, 3, 1f, true], [1, 48, 6, 9, 30f, true],
    ];

    public static IEnumerable<object[]> Cases() =>
        from width in new[] { 16, 8, 1 } from s in ShapeList select (object[])[width, .. s];

    private static (Tensor X, Tensor W, Tensor B, Tensor G) Inputs(int b, int c, int h, int w, float scale = 1f, bool channelsLast = true)
    {
        var gen = new Generator(17);
        Tensor Map() => channelsLast ? randn(b, h, w, c, generator: gen).permute(0, 3, 1, 2) : randn(b, c, h, w, generator: gen);
        var x = Map() * scale;
        return (x, 0.3f * randn(c, 1, 3, 3, generator: gen), 0.5f * randn(c, generator: gen), Map());
    }

    /// <summary>libtorch's autograd of the composition in float64: (dx, dW, dbias).</summary>
    private static Tensor[] ReferenceGradients(Tensor x, Tensor w, Tensor b, Tensor g)
    {
        var leaves = new[] { x, w, b }.Select(t => t.detach().to(float64).requires_grad_(true)).ToArray();
        DepthwiseConvSilu.Reference(leaves[0], leaves[1], leaves[2]).backward([g.to(float64)]);
        return leaves.Select(t => t.grad!).ToArray();
    }

    private static void CheckGradients(Tensor?[] actual, Tensor[] expected, string what)
    {
        string[] names = ["dx", "dW", "dbias"];
        for (int i = 0; i < 3; i++)
            Close.Check(actual[i]!, expected[i], 0, Close.OfMax(expected[i], 1e-5), $"{what}: {names[i]}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gradients_agree_with_libtorch_autograd(int width, int b, int c, int h, int w, float scale, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        var (x, wt, bias, g) = Inputs(b, c, h, w, scale, channelsLast);
        var (dx, dw, db) = DepthwiseConvSilu.Gradients(x, wt, bias, g, width: width);
        Assert.True(dx!.permute(0, 2, 3, 1).is_contiguous());   // channels-last, as x comes from SS2D
        CheckGradients([dx, dw, db], ReferenceGradients(x, wt, bias, g), $"({b}, {c}, {h}, {w})·{scale} at {width} lanes");
    }

    [Fact]
    public void Through_autograd_the_forward_is_libtorchs_and_the_gradients_are_the_kernels()
    {
        using var scope = NewDisposeScope();
        var (x0, w0, b0, g) = Inputs(2, 64, 16, 16);
        var (x, wt, bias) = (x0.detach().requires_grad_(true), w0.detach().requires_grad_(true), b0.detach().requires_grad_(true));
        Assert.True(DepthwiseConvSilu.TakesThisNode(x, wt, bias));
        var y = DepthwiseConvSilu.Apply(x, wt, bias);
        // The upstream gradient arrives through a permute, as in SS2D.
        y.permute(0, 2, 3, 1).backward([g.permute(0, 2, 3, 1)]);

        Close.Check(y.detach(), DepthwiseConvSilu.Reference(x0, w0, b0), 0, 0, "forward");
        CheckGradients([x.grad, wt.grad, bias.grad], ReferenceGradients(x0, w0, b0, g), "autograd");
        var (dx, dw, db) = DepthwiseConvSilu.Gradients(x0, w0, b0, g);
        Close.Check(x.grad!, dx!, 0, 0, "dx is the kernel's");
        Close.Check(wt.grad!, dw, 0, 0, "dW is the kernel's");
        Close.Check(bias.grad!, db, 0, 0, "dbias is the kernel's");
    }

    [Fact]
    public void An_input_without_gradient_gets_none()
    {
        using var scope = NewDisposeScope();
        var (x, w0, b0, g) = Inputs(1, 32, 9, 9);
        var (wt, bias) = (w0.detach().requires_grad_(true), b0.detach().requires_grad_(true));
        Assert.True(DepthwiseConvSilu.TakesThisNode(x, wt, bias));
        DepthwiseConvSilu.Apply(x, wt, bias).backward([g]);
        Assert.Null(x.grad);
        var expected = ReferenceGradients(x, w0, b0, g);
        Close.Check(wt.grad!, expected[1], 0, Close.OfMax(expected[1], 1e-5), "dW");
        Close.Check(bias.grad!, expected[2], 0, Close.OfMax(expected[2], 1e-5), "dbias");
    }

    [Fact]
    public void Gradients_are_the_same_bits_run_to_run_and_at_one_or_two_threads()
    {
        using var scope = NewDisposeScope();
        // 3 bands × 2 channel groups per image: tasks that two threads share.
        var (x, wt, bias, g) = Inputs(2, 128, 40, 24);
        var first = AtThreads.Run(2, () => DepthwiseConvSilu.Gradients(x, wt, bias, g));
        var again = AtThreads.Run(2, () => DepthwiseConvSilu.Gradients(x, wt, bias, g));
        var single = AtThreads.Run(1, () => DepthwiseConvSilu.Gradients(x, wt, bias, g));
        foreach (var (other, run) in new[] { (again, "second run"), (single, "one thread") })
        {
            Close.Check(other.Dx!, first.Dx!, 0, 0, $"dx, {run}");
            Close.Check(other.Dw, first.Dw, 0, 0, $"dW, {run}");
            Close.Check(other.Db, first.Db, 0, 0, $"dbias, {run}");
        }
    }

    [Fact]
    public void Float64_and_no_grad_take_libtorchs_own_path()
    {
        using var scope = NewDisposeScope();
        var (x0, w0, b0, g) = Inputs(2, 8, 6, 5);
        var (x, wt, bias) = (x0.to(float64).requires_grad_(true), w0.to(float64).requires_grad_(true), b0.to(float64).requires_grad_(true));
        Assert.False(DepthwiseConvSilu.TakesThisNode(x, wt, bias));
        DepthwiseConvSilu.Apply(x, wt, bias).backward([g.to(float64)]);
        var expected = ReferenceGradients(x0, w0, b0, g);
        CheckGradients([x.grad, wt.grad, bias.grad], expected, "float64");
        using (no_grad())
        {
            var xf = x0.detach().requires_grad_(true);
            Assert.False(DepthwiseConvSilu.TakesThisNode(xf, w0, b0));
            var y = DepthwiseConvSilu.Apply(xf, w0, b0);
            Assert.False(y.requires_grad);
            Close.Check(y, DepthwiseConvSilu.Reference(x0, w0, b0), 0, 0, "no_grad forward");
        }
    }

    [Fact]
    public void Wrong_shapes_are_refused()
    {
        using var scope = NewDisposeScope();
        var (x, wt, bias, g) = Inputs(1, 4, 5, 5);
        Assert.Throws<ArgumentException>(() => DepthwiseConvSilu.Gradients(x, wt, bias, g.narrow(3, 0, 4)));
        Assert.Throws<ArgumentException>(() => DepthwiseConvSilu.Gradients(x, zeros(4, 1, 5, 5), bias, g));
        Assert.Throws<ArgumentException>(() => DepthwiseConvSilu.Gradients(x, wt, zeros(3), g));
        Assert.False(DepthwiseConvSilu.TakesThisNode(x.requires_grad_(true), zeros(4, 1, 5, 5), bias));
    }
}
