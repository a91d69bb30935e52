using System.Runtime.Intrinsics;
using MambaAD.Benchmarks;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// The scan's port bound that <c>mambaad bench</c> prints beside the kernel (issue 14: ≤ 1.3 × at 8 and 16 lanes):
/// the FMA probe gives a rate at every width the machine runs, and the operation count follows the kernel's shape.
/// </summary>
public class PortBoundTests
{
    [Fact]
    public void FmaProbeGivesAFiniteRateAtEveryWidthTheMachineRuns()
    {
        foreach (int width in new[] { 8, 16 })
        {
            if ((width == 16 && !Vector512.IsHardwareAccelerated) || !Vector256.IsHardwareAccelerated) continue;
            double rate = PortBound.FmaPerNs(width, itersPerWorker: 200_000);
            Assert.True(double.IsFinite(rate) && rate > 0, $"{width} lanes: {rate} FMA/ns");
        }
    }

    [Fact]
    public void OperationCountGrowsWithTheDeltaRankAndIsCountedForVectorWidthsOnly()
    {
        // One FMA per rank of the Δ projection; the 16-lane exp2 (vreduceps, vscalefps) is shorter than the 8-lane one.
        Assert.Equal(PortBound.ForwardOpsPerVectorStep(16, 4) + 1, PortBound.ForwardOpsPerVectorStep(16, 5));
        Assert.Equal(PortBound.ForwardOpsPerVectorStep(8, 4) + 1, PortBound.ForwardOpsPerVectorStep(8, 5));
        Assert.True(PortBound.ForwardOpsPerVectorStep(16, 4) < PortBound.ForwardOpsPerVectorStep(8, 4));
        Assert.Throws<ArgumentException>(() => PortBound.ForwardOpsPerVectorStep(1, 4));
    }
}
