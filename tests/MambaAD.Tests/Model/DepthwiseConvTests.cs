using MambaAD.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// DepthwiseConv, the LSS local branches' depth-wise conv with its own weight gradient: the forward is libtorch's, the
/// input gradient (the flipped kernel's conv) and the weight gradient agree with libtorch's autograd (the reference) to
/// float32 rounding, in NCHW and channels-last memory, on maps and channel counts that are not whole bands or vectors,
/// at every kernel width, and two backward passes give the same bits.
/// </summary>
public class DepthwiseConvTests
{
    public static IEnumerable<object[]> Shapes() =>
        [[3, 2, 6, 5, 7], [5, 2, 4, 9, 13], [7, 3, 5, 8, 8], [7, 1, 2, 3, 21], [5, 2, 16, 16, 16]];   // k, B, C, H, W

    private static (Tensor X, Tensor W, Tensor G) Inputs(int k, int b, int c, int h, int w, ScalarType dtype = ScalarType.Float32)
    {
        var gen = new Generator(11);
        return (randn(b, c, h, w, generator: gen).to(dtype), (0.2f * randn(c, 1, k, k, generator: gen)).to(dtype),
            randn(b, c, h, w, generator: gen).to(dtype));
    }

    private static Tensor Plain(Tensor x, Tensor w) =>
        nn.functional.conv2d(x, w, null, padding: [w.shape[2] / 2, w.shape[2] / 2], groups: w.shape[0]);

    public static IEnumerable<object[]> Layouts() =>
        from s in Shapes() from channelsLast in new[] { false, true } select (object[])[.. s, channelsLast];

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Forward_and_gradients_agree_with_libtorch_autograd(int k, int b, int c, int h, int w, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        var (x0, w0, g) = Inputs(k, b, c, h, w);
        // The LSS branches' x is channels-last memory: the forward and dx then run oneDNN's NHWC kernels.
        if (channelsLast) x0 = x0.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var (xr, wr) = (x0.detach().requires_grad_(true), w0.detach().requires_grad_(true));
        var yr = Plain(xr, wr);
        yr.backward([g]);

        var (x, wt) = (x0.detach().requires_grad_(true), w0.detach().requires_grad_(true));
        Assert.True(DepthwiseConv.TakesThisNode(x, wt));
        var y = DepthwiseConv.Apply(x, wt);
        // The upstream gradient arrives through a permute, as in the model: not contiguous.
        y.permute(0, 2, 3, 1).backward([g.permute(0, 2, 3, 1)]);

        Close.Check(y.detach(), yr.detach(), 0, 0, "forward");
        if (channelsLast) Assert.True(x.grad!.permute(0, 2, 3, 1).is_contiguous(), "dx keeps x's channels-last layout");
        Close.Check(x.grad!, xr.grad!, 1e-5, Close.OfMax(xr.grad!, 1e-6), "input gradient");
        Close.Check(wt.grad!, wr.grad!, 1e-5, Close.OfMax(wr.grad!, 1e-6), "weight gradient");
    }

    public static IEnumerable<object[]> WidthCases() =>
        from width in new[] { 16, 8, 1 }
        from s in new object[][] { [7, 2, 64, 8, 8], [5, 2, 20, 17, 3], [3, 1, 24, 33, 5], [7, 1, 130, 4, 4] }
        select (object[])[width, .. s];

    /// <summary>The kernel at each vector width (16 lanes emulated where AVX-512 is missing) against float64 autograd:
    /// channel blocks of 16, 8 and 1, more than one band of rows and channel group, maps smaller than the kernel.</summary>
    [Theory]
    [MemberData(nameof(WidthCases))]
    public void Weight_gradient_agrees_at_every_vector_width(int width, int k, int b, int c, int h, int w)
    {
        using var scope = NewDisposeScope();
        var (x, w0, g) = Inputs(k, b, c, h, w);
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var (xr, wr) = (x.to(float64).requires_grad_(true), w0.to(float64).requires_grad_(true));
        Plain(xr, wr).backward([g.to(float64)]);
        Close.Check(DepthwiseConv.WeightGrad(x, g, k, width), wr.grad!, 0, Close.OfMax(wr.grad!, 1e-5), $"{k}×{k} at {width} lanes");
    }

    [Fact]
    public void Weight_gradient_is_the_same_bits_run_to_run_and_at_one_or_two_threads()
    {
        using var scope = NewDisposeScope();
        var (x, _, g) = Inputs(7, 4, 96, 40, 20);   // 3 bands × 2 channel groups × 4 images: tasks on both workers
        var first = AtThreads.Run(2, () => DepthwiseConv.WeightGrad(x, g, 7));
        for (int i = 0; i < 2; i++) Close.Check(AtThreads.Run(2, () => DepthwiseConv.WeightGrad(x, g, 7)), first, 0, 0, $"run {i + 2}");
        Close.Check(AtThreads.Run(1, () => DepthwiseConv.WeightGrad(x, g, 7)), first, 0, 0, "one thread");
    }

    [Fact]
    public void Float64_and_no_grad_take_libtorchs_own_path()
    {
        using var scope = NewDisposeScope();
        var (x0, w0, g) = Inputs(5, 2, 3, 6, 6, ScalarType.Float64);
        var (x, wt) = (x0.detach().requires_grad_(true), w0.detach().requires_grad_(true));
        Assert.False(DepthwiseConv.TakesThisNode(x, wt));
        var y = DepthwiseConv.Apply(x, wt);
        y.backward([g]);
        Assert.NotNull(wt.grad);
        using (no_grad())
        {
            var (xf, wf, _) = Inputs(5, 2, 3, 6, 6);
            Assert.False(DepthwiseConv.TakesThisNode(xf.requires_grad_(true), wf));
            var yf = DepthwiseConv.Apply(xf.requires_grad_(true), wf.requires_grad_(true));
            Assert.False(yf.requires_grad);
            Close.Check(yf, Plain(xf, wf), 0, 0, "no_grad forward");
        }
    }

    [Fact]
    public void Wrong_shapes_are_refused()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => DepthwiseConv.WeightGrad(zeros(1, 2, 4, 4), zeros(1, 2, 4, 5), 3));
        Assert.Throws<ArgumentException>(() => DepthwiseConv.WeightGrad(zeros(1, 2, 4, 4), zeros(1, 2, 4, 4), 4));
        Assert.Throws<ArgumentException>(() => DepthwiseConv.WeightGrad(zeros(1, 2, 4, 4), zeros(1, 2, 4, 4), 1));
        Assert.False(DepthwiseConv.TakesThisNode(zeros(1, 2, 4, 4).requires_grad_(true), zeros(2, 1, 1, 1)));
    }
}
