using static TorchSharp.torch;

namespace MambaAD.Tests;

/// <summary>
/// The one tensor comparison of the test suite: passes when |actual − expected| ≤ atol + rtol·|expected| for every
/// element (atol absolute, like numpy's allclose and mamba's test), with equal shapes and no NaN. A failure names the
/// max absolute and relative difference and the worst element (flat index, expected, actual), so a CI log says how
/// far off a result was. Tolerances stated relative to the reference's largest value (the golden README's form) go
/// through <see cref="OfMax"/>.
/// </summary>
public static class Close
{
    /// <summary>Asserts closeness with an absolute <paramref name="atol"/>.</summary>
    public static void Check(Tensor actual, Tensor expected, double rtol, double atol, string name)
    {
        using var scope = NewDisposeScope();
        Assert.True(actual.shape.SequenceEqual(expected.shape),
            $"{name}: shape ({string.Join(", ", actual.shape)}) ≠ expected ({string.Join(", ", expected.shape)})");
        var a = actual.detach().to(float64).cpu().flatten();
        var e = expected.detach().to(float64).cpu().flatten();
        if (e.numel() == 0) return;
        var diff = (a - e).abs();
        var excess = diff - (atol + rtol * e.abs());
        long worst = excess.nan_to_num(double.PositiveInfinity).argmax().item<long>();
        double worstExcess = excess[worst].item<double>();
        if (worstExcess <= 0 && !a.isnan().any().item<bool>() && !e.isnan().any().item<bool>()) return;
        double maxAbs = diff.max().item<double>();
        double maxRel = (diff / e.abs().clamp_min(1e-12)).max().item<double>();
        Assert.Fail($"{name}: max abs diff {maxAbs:E3}, max rel diff {maxRel:E3}; worst at flat index {worst}: " +
                    $"expected {e[worst].item<double>():G9}, actual {a[worst].item<double>():G9} (rtol {rtol:G3}, atol {atol:G3})");
    }

    /// <summary>
    /// Forward outputs of a float32 port against the official float32 run (golden README): rtol 1e-4 and atol
    /// 1e-4·max|expected|.
    /// </summary>
    public static void Forward(Tensor actual, Tensor expected, string name) =>
        Check(actual, expected, 1e-4, OfMax(expected, 1e-4), name);

    /// <summary>An absolute tolerance of <paramref name="fraction"/>·max|expected|.</summary>
    public static double OfMax(Tensor expected, double fraction)
    {
        using var scope = NewDisposeScope();
        return fraction * expected.detach().to(float64).abs().max().item<double>();
    }

    /// <summary>The largest |actual − expected| divided by max|expected|: for reporting residuals, not for asserting.</summary>
    public static double RelativeToMax(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var e = expected.detach().to(float64).cpu();
        return (actual.detach().to(float64).cpu() - e).abs().max().item<double>() / e.abs().max().item<double>();
    }
}
