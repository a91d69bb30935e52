using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace MambaAD.Util;

/// <summary>
/// Lets MKL choose its GEMM kernels on AMD CPUs by instruction set, as it does on Intel's. libtorch's Linear and
/// matmul go to MKL (linked into libtorch_cpu.so), and MKL picks kernels by vendor first: on AMD it runs its "Zen"
/// kernels whatever the CPU supports. On a Zen 5 VM SS2D's projections then ran at 2.4–2.6 × the encoder's time per
/// MAC; with MKL's AVX-512 kernels at 1.2–1.6 ×, and even its AVX2 kernels for Intel (MKL_ENABLE_INSTRUCTIONS=AVX2)
/// beat its Zen ones there, 1.5–2.0 × (docs/performance.md, "Issue 14, phase 9").
/// <para>
/// MKL asks one exported function, <c>mkl_serv_intel_cpu_true</c>, whether the CPU is Intel's; this makes it answer
/// yes (its first instructions become <c>mov eax, 1; ret</c>). Only on AMD CPUs with AVX2 and FMA, never on Intel's,
/// where the answer is yes already. Where .NET has no AVX-512, <see cref="NativeIsaLimit"/> (called first) holds MKL to
/// AVX2. <c>MAMBAAD_MKL_VENDOR_CHECK=keep</c> opts out. A process-wide policy: applications call <see cref="Bypass"/>
/// before libtorch's first GEMM (MKL keeps its first choice); the library never does.
/// </para>
/// </summary>
internal static unsafe partial class MklVendorCheck
{
    public const string OptOutVariable = "MAMBAAD_MKL_VENDOR_CHECK";
    private const string CheckSymbol = "mkl_serv_intel_cpu_true";
    private const string InstructionsVariable = "MKL_ENABLE_INSTRUCTIONS";

    /// <summary>What <see cref="Bypass"/> did in this process, for <c>mambaad info</c> and the bench's record.</summary>
    public static string State { get; private set; } = "not asked";

    /// <returns>Whether MKL's vendor check now answers yes on this AMD CPU.</returns>
    public static bool Bypass()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return Leave("MKL's own choice (not Linux x64)");
        if (!IsAmd()) return Leave("MKL's own choice (not an AMD CPU)");
        if (!Avx2.IsSupported || !Fma.IsSupported) return Leave("MKL's Zen kernels (no AVX2 and FMA here)");
        if (Environment.GetEnvironmentVariable(OptOutVariable) == "keep")
            return Leave($"MKL's Zen kernels ({OptOutVariable}=keep)");
        _ = torch.get_num_threads();   // loads libtorch
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory, out var lib)
            || !NativeLibrary.TryGetExport(lib, CheckSymbol, out var check))
            return Leave($"MKL's Zen kernels ({CheckSymbol} not found in libtorch_cpu.so)");
        var answer = (delegate* unmanaged<int>)check;
        if (answer() == 0 && !Patch((byte*)check))
            return Leave("MKL's Zen kernels (its code could not be made writable)");
        if (answer() == 0) return Leave("MKL's Zen kernels (the vendor check did not change)");
        var limit = NativeEnvironment.Get(InstructionsVariable);
        State = limit is null ? $"MKL's {(NativeIsaLimit.DotnetHasAvx512 ? "AVX-512" : "AVX2")} kernels (vendor check bypassed on AMD)"
            : $"MKL's kernels for Intel up to {limit} (vendor check bypassed on AMD)";
        return true;
    }

    private static bool Leave(string state)
    {
        State = state;
        return false;
    }

    /// <summary>The CPUID vendor string, leaf 0: EBX, EDX, ECX.</summary>
    private static bool IsAmd()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(vendor)) == "AuthenticAMD";
    }

    /// <summary>Overwrites the function's start with <c>mov eax, 1; ret</c>. Its pages are made writable for the
    /// write (a private copy of libtorch's text: the file is untouched) and executable throughout, then read + execute again.</summary>
    private static bool Patch(byte* function)
    {
        ReadOnlySpan<byte> returnOne = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
        long page = Environment.SystemPageSize;
        var start = (nint)((long)function & ~(page - 1));
        var length = (nuint)((long)function + returnOne.Length - start);
        if (MProtect(start, length, ProtRead | ProtWrite | ProtExec) != 0) return false;
        returnOne.CopyTo(new Span<byte>(function, returnOne.Length));
        _ = MProtect(start, length, ProtRead | ProtExec);   // if this fails the pages stay writable: still correct
        return true;
    }

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int MProtect(nint address, nuint length, int protection);
}
