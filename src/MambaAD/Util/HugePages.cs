namespace MambaAD.Util;

/// <summary>
/// Opts libtorch's CPU allocator (c10) into transparent huge pages: with <c>THP_MEM_ALLOC_ENABLE=1</c> it aligns
/// tensors of 2 MB and more to 2 MB and advises the kernel to back them with huge pages. Big tensors come fresh from
/// mmap on every allocation (glibc caps its reuse threshold at 32 MB), so with 4 KB pages a training step spent ~15 %
/// of its time in page faults. Measured (ResNet34, 256², 2 cores): inference 198 → 179 ms per image, a training step
/// 857 → 788 ms per image, peak RSS 8.1 → 7.7 GB. A process-wide policy: applications call
/// <see cref="Enable"/> first thing (before any tensor exists: c10 reads the variable once); the library never does.
/// </summary>
internal static class HugePages
{
    public const string Variable = "THP_MEM_ALLOC_ENABLE";

    /// <summary>Sets the variable in the native environment unless the user set it (either way); Linux only.</summary>
    /// <returns>Whether huge pages are requested for this process.</returns>
    public static bool Enable()
    {
        if (!OperatingSystem.IsLinux()) return false;
        return NativeEnvironment.SetIfUnset(Variable, "1");
    }
}
