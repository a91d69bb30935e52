using MambaAD.Model;
using static TorchSharp.torch;

namespace MambaAD.Tests.Model;

/// <summary>The fused channels-last IN + SiLU of the LSS local branches against its torch-ops reference.</summary>
public class InstanceNormSiluTests
{
    public static IEnumerable<object[]> Cases() =>
        from w in new[] { 16, 8, 1 }
        from s in new[] { "2,20,5,7", "1,64,8,8", "3,3,4,4", "1,128,1,1" }
        select new object[] { w, s };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesReferenceOnChannelsLastAndContiguousInputs(int width, string shape)
    {
        using var scope = NewDisposeScope();
        var s = shape.Split(',').Select(long.Parse).ToArray();
        var gen = new Generator(31);
        // Per-channel offsets and scales, so that mean and variance differ by channel (and the mean dominates some).
        var x = randn(s[0], s[2], s[3], s[1], generator: gen) * (0.1f + rand(s[1], generator: gen) * 3) + randn(s[1], generator: gen) * 5;
        var channelsLast = x.permute(0, 3, 1, 2);
        var expected = InstanceNormSilu.Reference(channelsLast.contiguous().to(float64), 1e-5);
        foreach (var input in new[] { channelsLast, channelsLast.contiguous() })
        {
            var y = InstanceNormSilu.Forward(input, 1e-5, width);
            Assert.Equal(input.shape, y.shape);
            Close.Check(y, expected, 1e-5, 1e-5, $"IN + SiLU {shape} at {width} lanes");
        }
    }

    [Fact]
    public void TakesTheReferenceWhenAutogradNeedsIt()
    {
        using var scope = NewDisposeScope();
        var x = randn(1, 4, 3, 3).requires_grad_(true);
        var y = InstanceNormSilu.Forward(x, 1e-5);
        Assert.True(y.requires_grad);
        y.sum().backward();
        Assert.NotNull(x.grad);
    }
}
