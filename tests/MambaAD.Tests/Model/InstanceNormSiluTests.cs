using MambaAD.Model;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>
/// The fused IN + SiLU of the LSS local branches against its torch-ops reference in float64: the channels-last and the
/// plane (NCHW) kernels' forward and the node's input gradient in both layouts, at every vector width,
/// on planes that are and are not whole numbers of vectors; gradients the same bits run to run and at one or two
/// threads; other dtypes take the reference.
/// </summary>
public class InstanceNormSiluTests
{
    public static IEnumerable<object[]> Cases() =>
        from w in new[] { 16, 8, 1 }
        from s in new[] { "2,20,5,7", "1,64,8,8", "3,3,4,4", "1,128,1,1", "2,16,64,64", "2,7,33,9" }
        select new object[] { w, s };

    private static long[] Shape(string shape) => shape.Split(',').Select(long.Parse).ToArray();

    /// <summary>Channels-last x with per-channel offsets and scales, so that mean and variance differ by channel (and
    /// the mean dominates some); permuted to (B, C, H, W).</summary>
    private static Tensor Input(long[] s, ulong seed = 31)
    {
        var gen = new Generator(seed);
        var x = randn(s[0], s[2], s[3], s[1], generator: gen) * (0.1f + rand(s[1], generator: gen) * 3) + randn(s[1], generator: gen) * 5;
        return x.permute(0, 3, 1, 2);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_matches_the_reference_on_channels_last_and_contiguous_inputs(int width, string shape)
    {
        using var scope = NewDisposeScope();
        var channelsLast = Input(Shape(shape));
        var expected = InstanceNormSilu.Reference(channelsLast.contiguous().to(float64), 1e-5);
        foreach (var input in new[] { channelsLast, channelsLast.contiguous() })
        {
            var y = InstanceNormSilu.Apply(input, 1e-5, width);
            Assert.Equal(input.shape, y.shape);
            Close.Check(y, expected, 1e-5, 1e-5, $"IN + SiLU {shape} at {width} lanes");
        }
    }

    public static IEnumerable<object[]> GradientCases() =>
        from c in Cases() from channelsLast in new[] { true, false } select (object[])[.. c, channelsLast];

    [Theory]
    [MemberData(nameof(GradientCases))]
    public void Input_gradient_matches_libtorch_autograd_in_float64(int width, string shape, bool channelsLast)
    {
        using var scope = NewDisposeScope();
        var s = Shape(shape);
        var x = channelsLast ? Input(s) : Input(s).contiguous();
        var g = randn(s, generator: new Generator(5));   // NCHW: copied to x's layout
        var leaf = x.to(float64).requires_grad_(true);
        InstanceNormSilu.Reference(leaf, 1e-5).backward([g.to(float64)]);
        var dx = InstanceNormSilu.InputGrad(x, g, 1e-5, width);
        Assert.True(channelsLast && s[2] * s[3] > 1 ? dx.permute(0, 2, 3, 1).is_contiguous() : dx.is_contiguous());
        // A plane of one pixel has z = 0 whatever x is, and a gradient of 0: rstd·gz − rstd·mean(gz) in float32, the
        // rounding of terms of size rstd·|g| = √(1/eps)·|g| ≈ 300·|g|.
        double atol = s[2] * s[3] == 1 ? 1e-7 * 316 * g.abs().max().item<float>() : Close.OfMax(leaf.grad!, 2e-5);
        Close.Check(dx, leaf.grad!, 0, atol, $"dx {shape} ({(channelsLast ? "channels-last" : "NCHW")}) at {width} lanes");
    }

    [Fact]
    public void Through_autograd_the_node_gives_the_kernels_forward_and_gradient()
    {
        using var scope = NewDisposeScope();
        var x0 = Input([2, 32, 12, 10]);                 // channels-last, as in the LSS branches
        var g = randn(2, 32, 12, 10, generator: new Generator(3));
        var x = x0.detach().requires_grad_(true);
        var y = InstanceNormSilu.Apply(x, 1e-5);
        Assert.True(y.requires_grad);
        Assert.True(y.permute(0, 2, 3, 1).is_contiguous());
        y.backward([g]);
        using (no_grad()) Close.Check(y.detach(), InstanceNormSilu.Apply(x0, 1e-5), 0, 0, "forward is the kernel's");
        Close.Check(x.grad!, InstanceNormSilu.InputGrad(x0, g, 1e-5), 0, 0, "dx is the kernel's");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Input_gradient_is_the_same_bits_run_to_run_and_at_one_or_two_threads(bool channelsLast)
    {
        using var scope = NewDisposeScope();
        var x = channelsLast ? Input([3, 40, 24, 24]) : Input([3, 40, 24, 24]).contiguous();
        var g = randn(3, 40, 24, 24, generator: new Generator(9));
        var first = AtThreads.Run(2, () => InstanceNormSilu.InputGrad(x, g, 1e-5));
        Close.Check(AtThreads.Run(2, () => InstanceNormSilu.InputGrad(x, g, 1e-5)), first, 0, 0, "second run");
        Close.Check(AtThreads.Run(1, () => InstanceNormSilu.InputGrad(x, g, 1e-5)), first, 0, 0, "one thread");
    }

    [Fact]
    public void Float64_takes_the_reference_with_libtorchs_autograd()
    {
        using var scope = NewDisposeScope();
        var x = randn(1, 4, 3, 3, float64).requires_grad_(true);
        var y = InstanceNormSilu.Apply(x, 1e-5);
        Close.Check(y.detach(), InstanceNormSilu.Reference(x.detach(), 1e-5), 0, 0, "float64 forward");
        y.sum().backward();
        Assert.NotNull(x.grad);
    }

    [Fact]
    public void Mismatched_gradient_shape_is_refused() =>
        Assert.Throws<ArgumentException>(() => InstanceNormSilu.InputGrad(zeros(1, 2, 3, 3), zeros(1, 2, 3, 4), 1e-5));
}
