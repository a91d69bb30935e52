using System.Runtime.InteropServices;
using MambaAD.Ssm;
using static TorchSharp.torch;

namespace MambaAD.Tests.Ssm;

/// <summary>A fact for glibc on x86-64, where the scan workers flush subnormals; skipped elsewhere.</summary>
public sealed class LinuxX64FactAttribute : FactAttribute
{
    public LinuxX64FactAttribute()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
            Skip = "MXCSR through glibc's fenv: Linux x86-64 only";
    }
}

public sealed class FlushToZeroTests
{
    private const uint FtzDaz = (1u << 15) | (1u << 6);

    [LinuxX64Fact]
    public void Enter_sets_flush_to_zero_and_denormals_are_zero_and_Leave_restores()
    {
        uint before = FlushToZero.Current;
        Assert.Equal(0x1F80u, before & 0x1F80u);   // a live MXCSR: exception masks set
        uint saved = FlushToZero.Enter();
        try
        {
            Assert.Equal(FtzDaz, FlushToZero.Current & FtzDaz);
            Assert.Equal(0f, Flushed(1e-30f, 1e-10f));   // 1e-40 would be subnormal: flushed
        }
        finally
        {
            FlushToZero.Leave(saved);
        }
        Assert.Equal(before, FlushToZero.Current);
        Assert.NotEqual(0f, Flushed(1e-30f, 1e-10f));   // subnormal again: nothing leaks to the caller
    }

    /// <summary>The scan runs its workers with FTZ/DAZ (its calling thread is one of them) and gives the caller its MXCSR back.</summary>
    [LinuxX64Fact]
    public void A_scan_leaves_the_callers_floating_point_mode_as_it_found_it()
    {
        uint before = FlushToZero.Current;
        using var scope = NewDisposeScope();
        var x = MambaAD.Benchmarks.ScanSampleInputs.CreateProjected(1, 8, 32, 16, 64, 2);
        var paths = stack(Enumerable.Range(0, 8).Select(_ => arange(64L)).ToArray());
        using (no_grad()) SelectiveScanCpu.Instance.ScanAndMergeProjected(x[0], x[1], x[2], x[3], x[4], x[5], paths);
        Assert.Equal(before, FlushToZero.Current);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static float Flushed(float a, float b) => a * b;
}
