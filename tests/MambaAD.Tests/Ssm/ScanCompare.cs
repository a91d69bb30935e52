using static TorchSharp.torch;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// One comparison helper for the scan tests: passes when |actual − expected| ≤ atol + rtol·|expected| everywhere,
/// and otherwise fails with the max abs / rel difference and the flat index of the worst element (mamba's test prints
/// the same before each assert, so a CI log says how far off a result was).
/// </summary>
internal static class ScanCompare
{
    public static void Close(Tensor expected, Tensor actual, double rtol, double atol, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var e = expected.to(ScalarType.Float64).flatten();
        var a = actual.to(ScalarType.Float64).flatten();
        var diff = (a - e).abs();
        var excess = diff - (atol + rtol * e.abs());
        long worst = excess.argmax().item<long>();
        double worstExcess = excess[worst].item<double>();
        double maxAbs = diff.max().item<double>();
        double maxRel = (diff / e.abs().clamp_min(1e-12)).max().item<double>();
        if (!(worstExcess <= 0) || a.isnan().any().item<bool>())
            Assert.Fail($"{what}: max abs diff {maxAbs:E3}, max rel diff {maxRel:E3}; worst at flat index {worst}: " +
                        $"expected {e[worst].item<double>():G9}, actual {a[worst].item<double>():G9} (rtol {rtol}, atol {atol})");
    }

    /// <summary>
    /// Central differences (loss(x + eps) − loss(x − eps)) / 2eps for every element of <paramref name="x"/> (a
    /// contiguous leaf, perturbed in place and restored), as a float64 tensor of x's shape.
    /// </summary>
    public static Tensor CentralDifferences(Tensor x, Func<double> loss, double eps)
    {
        var flat = x.flatten();
        var fd = zeros(flat.numel(), dtype: ScalarType.Float64);
        for (long j = 0; j < flat.numel(); j++)
        {
            using var inner = NewDisposeScope();
            double orig = flat[j].to(ScalarType.Float64).item<double>();
            flat[j] = orig + eps;
            double lp = loss();
            flat[j] = orig - eps;
            double lm = loss();
            flat[j] = orig;
            fd[j] = (lp - lm) / (2 * eps);
        }
        return fd.reshape(x.shape);
    }
}

public class ScanCompareTests
{
    [Fact]
    public void AcceptsWithinToleranceAndRejectsBeyond()
    {
        using var e = tensor(new[] { 1.0f, -2.0f, 100.0f });
        using var ok = tensor(new[] { 1.0005f, -2.0f, 100.09f });
        using var bad = tensor(new[] { 1.0f, -2.0f, 100.2f });
        ScanCompare.Close(e, ok, rtol: 1e-3, atol: 1e-3, "ok");
        var ex = Assert.ThrowsAny<Exception>(() => ScanCompare.Close(e, bad, rtol: 1e-3, atol: 1e-3, "bad"));
        Assert.Contains("flat index 2", ex.Message);
    }

    [Fact]
    public void RejectsNaN()
    {
        using var e = tensor(new[] { 1.0f });
        using var n = tensor(new[] { float.NaN });
        Assert.ThrowsAny<Exception>(() => ScanCompare.Close(e, n, rtol: 1, atol: 1, "nan"));
    }
}
