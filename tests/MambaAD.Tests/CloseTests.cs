using static TorchSharp.torch;
using Xunit.Sdk;

namespace MambaAD.Tests;

public class CloseTests
{
    [Fact]
    public void AcceptsWithinAbsoluteAndRelativeToleranceAndRejectsBeyond()
    {
        using var e = tensor(new[] { 1.0f, -2.0f, 100.0f });
        using var ok = tensor(new[] { 1.0005f, -2.0f, 100.09f });   // 1e-3 + 1e-3·100 = 0.101 allowed at index 2
        using var bad = tensor(new[] { 1.0f, -2.0f, 100.2f });
        Close.Check(ok, e, rtol: 1e-3, atol: 1e-3, "ok");
        var ex = Assert.ThrowsAny<XunitException>(() => Close.Check(bad, e, rtol: 1e-3, atol: 1e-3, "bad"));
        Assert.Contains("flat index 2", ex.Message);
        Assert.Contains("bad", ex.Message);
    }

    [Fact]
    public void AtolIsAbsoluteNotScaledByTheReference()
    {
        // |Δ| = 3e-3 at a reference of 4: allowed by atol 1e-3·max|ref| = 4e-3, not by an absolute 1e-3.
        using var e = tensor(new[] { 0.0f, 4.0f });
        using var a = tensor(new[] { 3e-3f, 4.0f });
        Close.Check(a, e, 0, Close.OfMax(e, 1e-3), "relative to max");
        Assert.ThrowsAny<XunitException>(() => Close.Check(a, e, 0, 1e-3, "absolute"));
    }

    [Fact]
    public void ForwardIsTheGoldenReadmeTolerance()
    {
        using var e = tensor(new[] { 1.0f, -2.0f, 4.0f });
        using var inside = tensor(new[] { 1.0f + 4.5e-4f, -2.0f, 4.0f });   // atol 1e-4·4 + rtol 1e-4·1 = 5e-4
        using var outside = tensor(new[] { 1.0f + 6e-4f, -2.0f, 4.0f });
        Close.Forward(inside, e, "inside");
        var ex = Assert.ThrowsAny<XunitException>(() => Close.Forward(outside, e, "outside"));
        Assert.Contains("flat index 0", ex.Message);
    }

    [Fact]
    public void RejectsNaNAndShapeMismatch()
    {
        using var e = tensor(new[] { 1.0f, -2.0f, 4.0f });
        using var nan = tensor(new[] { float.NaN, -2.0f, 4.0f });
        Assert.ThrowsAny<XunitException>(() => Close.Check(nan, e, 1, 1, "nan"));
        Assert.ThrowsAny<XunitException>(() => Close.Check(e, nan, 1, 1, "nan expected"));
        using var wrongShape = tensor(new[] { 1.0f, -2.0f });
        Assert.ThrowsAny<XunitException>(() => Close.Check(wrongShape, e, 1, 1, "shape"));
    }

    [Fact]
    public void ZeroToleranceMeansBitEqual()
    {
        using var e = tensor(new[] { 1.0f, 3.0f });
        using var next = tensor(new[] { 1.0f, MathF.BitIncrement(3.0f) });
        Close.Check(e.clone(), e, 0, 0, "same");
        Assert.ThrowsAny<XunitException>(() => Close.Check(next, e, 0, 0, "one ulp"));
    }
}
