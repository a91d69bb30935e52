using MambaAD.Benchmarks;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// ScanAndMergeXProj (x_proj folded into the scan op, so training keeps u instead of xDbl) against x_proj as its own
/// matmul followed by ScanAndMergeProjected, through autograd: the same y bit for bit, and the gradients of u,
/// xProjWeight, dtWeight, A, D and deltaBias within float32 summation-order noise, at every kernel width and for the
/// reference (whose default method is that composition).
/// </summary>
[Collection("SelectiveScan")]
public class XProjScanTests
{
    private static readonly string[] Names = ["u", "xProjWeight", "dtWeight", "A", "D", "deltaBias"];

    public static IEnumerable<object[]> Cases() =>
        from impl in new[] { "kernel16", "kernel8", "kernel1", "reference32" }
        from shape in new[] { "2,8,16,16,64,4", "1,4,33,16,130,3", "1,2,5,4,300,2" }
        select new object[] { impl, shape };

    /// <summary>[u, xProjWeight, dtWeight, A, D, deltaBias] for the shape (Bt, K, Dg, N, L, R).</summary>
    private static Tensor[] Inputs(int[] s)
    {
        var x = ScanSampleInputs.CreateProjected(s[0], s[1], s[2], s[3], s[4], s[5]);
        var gen = new Generator(7);
        var w = randn(s[1], s[5] + 2 * s[3], s[2], generator: gen) / MathF.Sqrt(s[2]);
        return [x[0], w, x[2], x[3], x[4], x[5]];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fused_x_proj_gives_the_composition_s_output_and_gradients(string impl, string shape)
    {
        using var scope = NewDisposeScope();
        var s = shape.Split(',').Select(int.Parse).ToArray();
        var inputs = Inputs(s);
        var paths = SelectiveScanTests.Paths(s[1], s[4]);
        var scan = SelectiveScanTests.Projected(impl);
        var g = randn(s[0], s[4], s[2], generator: new Generator(11));

        var fused = inputs.Select(t => t.detach().requires_grad_(true)).ToArray();
        var yFused = scan.ScanAndMergeXProj(fused[0], fused[1], fused[2], fused[3], fused[4], fused[5], paths);
        (yFused * g).sum().backward();

        var plain = inputs.Select(t => t.detach().requires_grad_(true)).ToArray();
        var xDbl = XProj.Apply(plain[0], plain[1]);
        var yPlain = scan.ScanAndMergeProjected(plain[0], xDbl, plain[2], plain[3], plain[4], plain[5], paths);
        (yPlain * g).sum().backward();

        Close.Check(yFused.detach(), yPlain.detach(), 0, 0, $"{impl} y");
        for (int i = 0; i < Names.Length; i++)
        {
            Assert.NotNull(fused[i].grad);
            var expected = plain[i].grad!;
            Close.Check(fused[i].grad!, expected, 1e-5, Close.OfMax(expected, 1e-5), $"{impl} {shape} d{Names[i]}");
        }
    }

    [Fact]
    public void A_wrong_x_proj_weight_is_named_with_and_without_autograd()
    {
        using var scope = NewDisposeScope();
        var x = Inputs([1, 2, 3, 4, 5, 2]);
        var paths = SelectiveScanTests.Paths(2, 5);
        var leaves = x.Select(t => t.detach().requires_grad_(true)).ToArray();
        var wrong = randn(2, 9, 3).requires_grad_(true);   // R + 2N = 10 rows expected
        var ex = Assert.Throws<ArgumentException>(() =>
            SelectiveScanCpu.Instance.ScanAndMergeXProj(leaves[0], wrong, leaves[2], leaves[3], leaves[4], leaves[5], paths));
        Assert.Contains("xProjWeight", ex.Message);
        using (no_grad())
        {
            var plain = Assert.Throws<ArgumentException>(() =>
                SelectiveScanCpu.Instance.ScanAndMergeXProj(x[0], wrong, x[2], x[3], x[4], x[5], paths));
            Assert.Contains("xProjWeight", plain.Message);
        }
    }
}
