using System.Runtime.Intrinsics;
using MambaAD.Benchmarks;
using static TorchSharp.torch;

namespace MambaAD.Tests.Ssm;

/// <summary>A fact that needs AVX-512 hardware; skipped with the reason elsewhere.</summary>
public sealed class Avx512FactAttribute : FactAttribute
{
    public Avx512FactAttribute()
    {
        if (!Vector512.IsHardwareAccelerated) Skip = "needs AVX-512: the over-states variant is written for 16 lanes only";
    }
}

[Collection("SelectiveScan")]
public class OverStatesScanTests
{
    /// <summary>The benchmark's SIMD-over-N variant must compute the same scan, or its timing means nothing.</summary>
    [Avx512Fact]
    public void OverStatesVariantMatchesFloat64Reference()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = SelectiveScanTests.Inputs(2, 4, 20, 16, 67, merge: false);
        var x64 = x.Select(t => t.to(float64)).ToArray();
        var expected = MambaAD.Ssm.SelectiveScanReference.Instance.Scan(x64[0], x64[1], x64[2], x64[3], x64[4], x64[5], x64[6]);
        var y = OverStatesScan.Forward(x[0], x[1], x[2], x[3], x[4], x[5], x[6]);
        Close.Check(y, expected, SelectiveScanTests.RtolY, SelectiveScanTests.AtolY, "over-states");
    }
}
