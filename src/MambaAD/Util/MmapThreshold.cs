using System.Runtime.InteropServices;

namespace MambaAD.Util;

/// <summary>
/// glibc's mmap threshold for libtorch's CPU tensors (they come from malloc). By default glibc raises the threshold each
/// time a mapped block is freed, up to 32 MB; blocks below it then come from the heap, which keeps them when freed, in
/// fragments, for reuse. That reuse is what inference wants (its buffers stay warm: fixing the threshold at 1 MB made
/// the encoder 50 % slower), but a training step's activations are large and short-lived: a batch-16 step at 256²
/// (ResNet34) held 2.6 GB of freed memory between steps and peaked at 5.3 GB resident, against 3.3 GB with the
/// threshold fixed at <see cref="Training"/>, where every tensor of 1 MB and more has its own mapping and goes back to
/// the system when freed (docs/performance.md, "Training memory"). A process-wide policy, like <see cref="HugePages"/>:
/// the application sets it (the CLI's train command); the library never does. A threshold the user chose
/// (<c>GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…</c>) is kept.
/// </summary>
internal static partial class MmapThreshold
{
    /// <summary>For training: 1 MB.</summary>
    public const int Training = 1 << 20;

    /// <summary>glibc's own ceiling for its dynamic threshold (32 MB on 64-bit), where it sits once a large block was freed.</summary>
    public const int GlibcCeiling = 32 << 20;

    private const int M_MMAP_THRESHOLD = -3;

    /// <summary>Fixes the threshold on glibc (Linux); elsewhere, or when the user chose one, does nothing.</summary>
    /// <returns>Whether the threshold was set.</returns>
    public static bool Set(int bytes)
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("mmap_threshold") == true) return false;
        try
        {
            return Mallopt(M_MMAP_THRESHOLD, bytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;   // not glibc (musl has no mallopt)
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int param, int value);
}
