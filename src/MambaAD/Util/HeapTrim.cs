using System.Runtime.InteropServices;

namespace MambaAD.Util;

/// <summary>
/// Gives the C heap's free pages back to the system (glibc's <c>malloc_trim</c>). libtorch's CPU tensors come from
/// malloc, and glibc keeps freed blocks below its mmap threshold (dynamic, up to 32 MB) in the heap for reuse. A training
/// step's activations are large, short-lived and of many sizes, so they leave the heap fragmented: a batch-16 step at
/// 256² (ResNet34) held 3.3 GB of freed memory between steps and peaked at 5.9–6.5 GB resident. The trainer trims after
/// every step: peak 4.3 GB for ~15 % more step time (the next step faults its pages in again), where fixing the mmap
/// threshold at 1 MB instead (every tensor of 1 MB and more mapped afresh, the periodic tests' too) gave 3.4 GB for
/// ~25 % (docs/performance.md, "Training memory"). Freeing memory is safe for any host process, so the library does it.
/// With jemalloc preloaded (see <see cref="NativeAllocator"/>, the faster choice) glibc's heap is unused and this finds nothing.
/// </summary>
internal static partial class HeapTrim
{
    /// <summary>Returns the heap's free pages to the system on glibc (Linux); elsewhere does nothing.</summary>
    /// <returns>Whether memory was released.</returns>
    public static bool Run()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return MallocTrim(0) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;   // not glibc (musl has no malloc_trim)
        }
    }

    /// <summary>
    /// Returns the C heap's free pages to the system whichever allocator serves it: jemalloc's kept pages (which
    /// <see cref="Run"/> leaves alone) or glibc's heap. For a process going idle (the server after a burst).
    /// </summary>
    /// <returns>Whether memory was released.</returns>
    public static bool ReturnAll() => NativeAllocator.PurgeJemalloc() || Run();

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
