using MambaAD.Benchmarks;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// ScanAndMergeProjected (SS2D's call: the Δ projection delta = dtWeight[k]·x_r folded into the scan) for every
/// ISelectiveScan implementation against the float64 oracle, the reference on float64 leaves (einsum projection →
/// reference ScanAndMerge): output and the gradients of Σ y ⊙ g w.r.t. u, xDbl, dtWeight, A, D and deltaBias, over
/// odd shapes (channels not a multiple of the vector width, L = 1, batch 1, chunk remainders, K = 2/4/8, R = 1…8,
/// N = 16, 4 and 5) and every kernel width. Also: the oracle's backward against finite differences, argument checks,
/// the float64 fallback and the no-gradient forward.
/// </summary>
[Collection("SelectiveScan")]
public class ProjectedScanTests
{
    // SelectiveScanTests' pairs: float32 vs float64 reference, |Δ| ≤ atol + rtol·|ref|. y gets (RtolY, AtolY); the
    // per-element input gradients du and dxDbl get (RtolGrad, AtolGrad); the parameter gradients, which sum over batch
    // and L, get (RtolSum, AtolSum): ddtWeight, dA, dD, ddelta_bias. Observed (2026-11-29, all 24 cases, AVX-512
    // machine): y errs by up to 6.1e-6 abs (23 % of its tolerance, kernel16), du and dxDbl by ≤ 1.1e-5 abs (≤ 6 % of
    // theirs), the summed gradients by ≤ 2.2e-4 abs on values up to 97 (≤ 4 % of theirs).
    private const double RtolY = SelectiveScanTests.RtolY, AtolY = SelectiveScanTests.AtolY;
    private const double RtolGrad = SelectiveScanTests.RtolGrad, AtolGrad = SelectiveScanTests.AtolGrad;
    private const double RtolSum = SelectiveScanTests.RtolSum, AtolSum = SelectiveScanTests.AtolSum;

    internal static readonly string[] GradNames = ["y", "du", "dxDbl", "ddtWeight", "dA", "dD", "ddelta_bias"];

    // (Bt, K, Dg, N, L, R): Dg 16 (whole blocks at every width), 20 and 33 (partial blocks at 16 and 8), 5 and 3, 9
    // (fewer channels than a vector); L 1, 7 (one partial chunk of 32), 33, 64, 65 and 130 (whole and partial chunks;
    // 64-step segments of two chunks and their remainders in the forward) and 600 (19 chunks); R odd and even, below
    // and above 8 (the Δ projection takes four steps at a time and the rest one by one; the backward's dWdt and d x_r
    // take eight r at a time, then four, then the rest one by one); N 16, 4 and 5 (the recurrence unrolls states by 4: N = 5 takes
    // its remainder loop; N = 16 sums dB and dC sixteen states at a time). Dg 16 works in u's own rows, the others in
    // copies.
    private static readonly int[][] Shapes =
    [
        [2, 8, 16, 16, 64, 4], [1, 4, 20, 16, 65, 3], [1, 2, 5, 16, 1, 1], [2, 4, 33, 16, 130, 8],
        [1, 2, 3, 4, 7, 3], [1, 8, 9, 5, 33, 2], [1, 2, 17, 16, 600, 4],   // L = 600: 19 chunks of 32, the last partial
        [1, 2, 32, 16, 70, 11],   // R = 11: one group of eight r and three alone
        [1, 4, 48, 16, 97, 13],   // R = 13: eight r, four, and one alone
    ];

    public static IEnumerable<object[]> Cases() =>
        from n in SelectiveScanTests.Names from s in Shapes select new object[] { n, string.Join(",", s) };

    private static int[] Parse(string shape) => shape.Split(',').Select(int.Parse).ToArray();

    /// <summary>[u, xDbl, dtWeight, A, D, deltaBias] of the shape string (Bt, K, Dg, N, L, R).</summary>
    private static Tensor[] Inputs(int[] s) => ScanSampleInputs.CreateProjected(s[0], s[1], s[2], s[3], s[4], s[5]);

    /// <summary>y and the 6 gradients of Σ y ⊙ g, in the dtype given (fresh leaves).</summary>
    internal static Tensor[] RunWithGrads(ISelectiveScan scan, Tensor[] inputs, Tensor g, ScalarType dtype, Tensor paths)
    {
        var x = inputs.Select(t => t.to(dtype).detach().requires_grad_(true)).ToArray();
        var y = scan.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
        (y * g.to(dtype)).sum().backward();
        return [y.detach(), .. x.Select(t => t.grad!)];
    }

    /// <summary>The float64 oracle: the reference on float64 leaves.</summary>
    private static Tensor[] Oracle(Tensor[] inputs, Tensor g, Tensor paths) =>
        RunWithGrads(SelectiveScanReference.Instance, inputs, g, float64, paths);

    private static (double Rtol, double Atol) Tolerance(int i) => i switch
    {
        0 => (RtolY, AtolY),
        1 or 2 => (RtolGrad, AtolGrad),
        _ => (RtolSum, AtolSum),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ProjectedScanMatchesFloat64Reference(string impl, string shape)
    {
        using var scope = NewDisposeScope();
        var s = Parse(shape);
        var inputs = Inputs(s);
        var paths = SelectiveScanTests.Paths(s[1], s[4]);
        var g = randn(s[0], s[4], s[2], generator: new Generator(19));   // like y: (Bt, L, d)
        var expected = Oracle(inputs, g, paths);
        var actual = RunWithGrads(SelectiveScanTests.Projected(impl), inputs, g, float32, paths);
        Assert.Equal(float32, actual[0].dtype);
        for (int i = 0; i < expected.Length; i++)
        {
            var (rtol, atol) = Tolerance(i);
            Close.Check(actual[i], expected[i], rtol, atol, $"{impl} ScanAndMergeProjected {shape} {GradNames[i]}");
        }
    }

    /// <summary>The oracle's backward (einsum + split + reference ScanAndMerge) against central differences in
    /// float64, every element of every input (tiny case).</summary>
    [Fact]
    public void ReferenceProjectedBackwardMatchesFiniteDifferencesFloat64()
    {
        using var scope = NewDisposeScope();
        var inputs = ScanSampleInputs.CreateProjected(1, 2, 3, 4, 5, 2).Select(t => t.to(float64)).ToArray();
        var paths = SelectiveScanTests.Paths(2, 5);
        var g = randn(1, 5, 3, generator: new Generator(29), dtype: float64);
        var grads = RunWithGrads(SelectiveScanReference.Instance, inputs, g, float64, paths);
        const double eps = 1e-6;
        for (int i = 0; i < inputs.Length; i++)
        {
            var fd = FiniteDifferences.Central(inputs[i], () => Loss(inputs), eps);
            Close.Check(grads[i + 1], fd, 1e-6, 1e-8, $"finite differences {GradNames[i + 1]}");
        }

        double Loss(Tensor[] x)
        {
            using var _ = no_grad();
            var y = SelectiveScanReference.Instance.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
            return (y * g).sum().item<double>();
        }
    }

    [Theory]
    [InlineData("kernel16")]
    [InlineData("kernel8")]
    [InlineData("kernel1")]
    public void NoGradForwardEqualsAutogradForward(string impl)
    {
        // Without a gradient the kernel runs ForwardProjected without chunk states; with one, through the autograd
        // node (saving states per chunk). The arithmetic is the same, so y must agree exactly.
        using var scope = NewDisposeScope();
        int[] s = [2, 8, 33, 16, 130, 3];
        var x = Inputs(s);
        var paths = SelectiveScanTests.Paths(s[1], s[4]);
        var scan = SelectiveScanTests.Projected(impl);
        var g = ones(s[0], s[4], s[2]);
        var withGrad = RunWithGrads(scan, x, g, float32, paths)[0];

        var plain = scan.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
        Assert.False(plain.requires_grad);
        Close.Check(plain, withGrad, 0, 0, $"{impl} leaves without requires_grad");

        using (no_grad())
        {
            var leaves = x.Select(t => t.detach().requires_grad_(true)).ToArray();
            var y = scan.ScanAndMergeProjected(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], paths);
            Assert.False(y.requires_grad);
            Close.Check(y, withGrad, 0, 0, $"{impl} under no_grad");
        }
    }

    /// <summary>
    /// The backward runs the batch elements past the last whole round of its workers as one task per direction, each
    /// with its own du (ScanBackward.WholeElements): on 2 workers, batch 3 runs elements 0 and 1 whole and element 2 as
    /// K tasks, batch 1 only direction tasks. Their du is summed as one task sums it, so y and every gradient equal the
    /// 1-worker run's (every element whole) bit for bit.
    /// </summary>
    [Theory]
    [InlineData("kernel16", 3)]
    [InlineData("kernel16", 1)]
    [InlineData("kernel8", 3)]
    [InlineData("kernel1", 3)]
    public void BackwardSplitByDirectionGivesTheBitsOfWholeElements(string impl, int batch)
    {
        using var scope = NewDisposeScope();
        int[] s = [batch, 8, 32, 16, 97, 3];   // Dg 32: the tensors' own rows at every width; L 97: a partial chunk
        var scan = SelectiveScanTests.Projected(impl);
        int w = ((SelectiveScanCpu)scan).Width;
        var shape = new ScanParams { Bt = batch, K = 8, Dg = 32, N = 16, L = 97, R = 3, Chunk = ScanKernels.Chunk };
        Assert.Equal(batch, ScanBackward.WholeElements(shape, w, 1));
        Assert.Equal(batch - batch % 2, ScanBackward.WholeElements(shape, w, 2));
        var inputs = Inputs(s);
        var paths = SelectiveScanTests.Paths(s[1], s[4]);
        var g = randn(s[0], s[4], s[2], generator: new Generator(23));
        var whole = AtThreads.Run(1, () => RunWithGrads(scan, inputs, g, float32, paths));
        var split = AtThreads.Run(2, () =>
        {
            if (Environment.ProcessorCount >= 2) Assert.Equal(2, ScanWorkers.Threads);
            return RunWithGrads(scan, inputs, g, float32, paths);
        });
        for (int i = 0; i < whole.Length; i++) Close.Check(split[i], whole[i], 0, 0, $"{impl} batch {batch} {GradNames[i]}");
    }

    [Fact]
    public void KernelSendsFloat64ToTheReference()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = ScanSampleInputs.CreateProjected(1, 2, 3, 4, 5, 2).Select(t => t.to(float64)).ToArray();
        var paths = SelectiveScanTests.Paths(2, 5);
        var y = SelectiveScanCpu.Instance.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
        Assert.Equal(float64, y.dtype);
        var expected = SelectiveScanReference.Instance.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
        Close.Check(y, expected, 0, 0, "float64 fallback");
    }

    public static IEnumerable<object[]> ArgumentCases() =>
        from n in new[] { "kernel16", "reference32" }
        from c in new[] { "xDbl rows", "xDbl length", "dtWeight channels", "dtWeight directions", "paths int32" }
        select new object[] { n, c };

    [Theory]
    [MemberData(nameof(ArgumentCases))]
    public void ArgumentErrorsNameTheTensor(string impl, string wrong)
    {
        using var scope = NewDisposeScope();
        var x = ScanSampleInputs.CreateProjected(1, 2, 3, 4, 5, 2);   // xDbl (1, 5, 2, 2 + 8), dtWeight (2, 3, 2)
        var paths = SelectiveScanTests.Paths(2, 5);
        string name;
        switch (wrong)
        {
            case "xDbl rows": x[1] = x[1].narrow(3, 0, 9); name = "xDbl"; break;
            case "xDbl length": x[1] = x[1].narrow(1, 0, 4); name = "xDbl"; break;
            case "dtWeight channels": x[2] = randn(2, 4, 2); name = "dtWeight"; break;
            case "dtWeight directions": x[2] = randn(1, 3, 2); name = "dtWeight"; break;
            case "paths int32": paths = paths.to(int32); name = "paths"; break;
            default: throw new ArgumentException(wrong);
        }
        var scan = SelectiveScanTests.Projected(impl);
        var ex = Assert.Throws<ArgumentException>(() => scan.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths));
        Assert.Contains(name, ex.Message);
        if (wrong == "paths int32") Assert.Contains("int64", ex.Message);
    }
}
