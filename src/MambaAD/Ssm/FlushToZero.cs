using System.Runtime.InteropServices;

namespace MambaAD.Ssm;

/// <summary>
/// Flush-to-zero and denormals-are-zero (MXCSR's FTZ and DAZ bits) for the scan's worker threads, restored after. The
/// recurrence's states decay geometrically where δu·B is small, so in a trained model many pass through the subnormal
/// range, and every x86 operation that produces or reads a subnormal float takes a microcode assist (~100 cycles): with
/// a checkpoint trained 74 iterations on magnetic_tile, SS2D took 3 × its time with fresh weights (docs/performance.md,
/// "phase 4"). Flushing changes values below 2^−126 ≈ 1.2e−38 only. .NET has no MXCSR intrinsic: glibc's
/// fegetenv/fesetenv carry it (x86-64 fenv_t, MXCSR at byte 28); elsewhere this does nothing.
/// </summary>
internal static unsafe partial class FlushToZero
{
    private const uint Ftz = 1u << 15, Daz = 1u << 6, ExceptionMasks = 0x1F80;
    private const int FenvBytes = 32, MxcsrOffset = 28;
    private static readonly bool Supported = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64 && Probe();

    /// <summary>Sets FTZ and DAZ on the calling thread; returns the MXCSR to give <see cref="Leave"/>.</summary>
    public static uint Enter()
    {
        if (!Supported) return 0;
        uint old = Read();
        if ((old & (Ftz | Daz)) != (Ftz | Daz)) Write(old | Ftz | Daz);
        return old;
    }

    /// <summary>Restores the calling thread's MXCSR from <see cref="Enter"/>.</summary>
    public static void Leave(uint old)
    {
        if (Supported && old != 0 && (old & (Ftz | Daz)) != (Ftz | Daz)) Write(old);   // 0: Enter changed nothing
    }

    /// <summary>The calling thread's MXCSR (0 where unsupported).</summary>
    internal static uint Current => Supported ? Read() : 0;

    private static uint Read()
    {
        byte* env = stackalloc byte[FenvBytes];
        return FeGetEnv(env) == 0 ? *(uint*)(env + MxcsrOffset) : 0;
    }

    private static void Write(uint mxcsr)
    {
        byte* env = stackalloc byte[FenvBytes];
        if (FeGetEnv(env) != 0) return;
        *(uint*)(env + MxcsrOffset) = mxcsr;
        FeSetEnv(env);
    }

    /// <summary>Only if the layout is as expected: a live MXCSR has its exception masks set (0x1F80 by default).</summary>
    private static bool Probe()
    {
        try
        {
            byte* env = stackalloc byte[FenvBytes];
            return FeGetEnv(env) == 0 && (*(uint*)(env + MxcsrOffset) & ExceptionMasks) == ExceptionMasks;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libm.so.6", EntryPoint = "fegetenv")]
    private static partial int FeGetEnv(byte* env);

    [LibraryImport("libm.so.6", EntryPoint = "fesetenv")]
    private static partial int FeSetEnv(byte* env);
}
