using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace MambaAD.Util;

/// <summary>
/// Holds libtorch's native libraries to the vector width .NET runs at. Where .NET has no AVX-512 (a CPU without it, or
/// <c>DOTNET_EnableAVX512=0</c>, our stand-in for one), MKL (GEMMs), oneDNN (convolutions) and ATen's own kernels are
/// told to stop at AVX2 too, unless you set their variables. Without it the stand-in ran the encoder's convolutions
/// with oneDNN's AVX-512 kernels beside an AVX2 decoder, and model ÷ encoder read 6.7 where, with both at AVX2, it is
/// 4.2 (docs/performance.md, "Issue 14, phase 10"). On a CPU without AVX-512 the libraries stop there anyway: nothing
/// changes. A process-wide policy: applications call <see cref="Apply"/> before libtorch's first GEMM or convolution
/// (each library reads its variable once); the library never does.
/// </summary>
internal static class NativeIsaLimit
{
    /// <summary>The variables and their AVX2 values: MKL, oneDNN, ATen's CPU capability.</summary>
    public static readonly (string Name, string Value)[] Variables =
        [("MKL_ENABLE_INSTRUCTIONS", "AVX2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("ATEN_CPU_CAPABILITY", "avx2")];

    /// <summary>What <see cref="Apply"/> did in this process, for <c>mambaad info</c> and the bench's record.</summary>
    public static string State { get; private set; } = "not asked";

    /// <summary>Whether .NET runs with AVX-512 (the subsets the scan kernels use).</summary>
    public static bool DotnetHasAvx512 =>
        Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;

    /// <returns>Whether the libraries are held to AVX2.</returns>
    public static bool Apply()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return Set("as each library chooses (not Linux x64)", false);
        if (DotnetHasAvx512) return Set("as each library chooses (.NET runs AVX-512)", false);
        if (!Avx2.IsSupported) return Set("as each library chooses (no AVX2 here)", false);
        var kept = Variables.Where(v => !NativeEnvironment.SetIfUnset(v.Name, v.Value)).Select(v => $"{v.Name}={NativeEnvironment.Get(v.Name)}").ToList();
        return Set("AVX2 in MKL, oneDNN and ATen, as in .NET" + (kept.Count > 0 ? $" (yours kept: {string.Join(", ", kept)})" : ""), true);
    }

    private static bool Set(string state, bool limited)
    {
        State = state;
        return limited;
    }
}
