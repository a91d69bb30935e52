using static TorchSharp.torch;
using Xunit.Sdk;

namespace MambaAD.Tests;

public class CloseTests
{
    [Fact]
    public void AcceptsWithinToleranceAndRejectsBeyond()
    {
        using var e = tensor(new[] { 1.0f, -2.0f, 4.0f });
        using var inside = tensor(new[] { 1.0f + 3e-4f, -2.0f, 4.0f });   // atol 1e-4·4 + rtol 1e-4·1 = 5e-4
        using var outside = tensor(new[] { 1.0f + 6e-4f, -2.0f, 4.0f });
        Close.Check(inside, e, 1e-4, 1e-4, "inside");
        var ex = Assert.ThrowsAny<XunitException>(() => Close.Check(outside, e, 1e-4, 1e-4, "outside"));
        Assert.Contains("flat index 0", ex.Message);
        using var nan = tensor(new[] { float.NaN, -2.0f, 4.0f });
        Assert.ThrowsAny<XunitException>(() => Close.Check(nan, e, 1e-4, 1e-4, "nan"));
        using var wrongShape = tensor(new[] { 1.0f, -2.0f });
        Assert.ThrowsAny<XunitException>(() => Close.Check(wrongShape, e, 1e-4, 1e-4, "shape"));
    }
}
