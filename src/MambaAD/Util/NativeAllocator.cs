using System.Runtime.InteropServices;

namespace MambaAD.Util;

/// <summary>
/// Which C allocator serves libtorch's tensors in this process. glibc's heap fragments under a training step's
/// activations (many sizes, short-lived, interleaved with the ones kept for the backward), and tensors above its
/// 32 MB mmap ceiling come as fresh, zero-filled pages on every step; jemalloc, preloaded with its freed pages kept
/// (MALLOC_CONF dirty_decay_ms:-1), reuses them: a batch-16 step ~1.5× faster at less peak memory (docs/performance.md,
/// "Issue 14, phase 5"), and with lg_extent_max_active_fit:20 it reuses them for any size, so a long run stays flat
/// (phase 27). The <c>./mambaad</c> launcher preloads it when libjemalloc.so.2 is installed; a preload has
/// to happen before the process starts, so the library can only report it (<c>mambaad info</c>, <c>mambaad bench</c>).
/// </summary>
internal static unsafe class NativeAllocator
{
    /// <summary>Whether jemalloc is this process's malloc (its <c>mallctl</c> is in the global symbol scope).</summary>
    private static bool IsJemalloc => Mallctl() != null;

    /// <summary>What to do about it, for a process on glibc's malloc on Linux; null where jemalloc already runs (or elsewhere).</summary>
    public static string? Advice => OperatingSystem.IsLinux() && !IsJemalloc
        ? "install libjemalloc2 and run ./mambaad: training steps ~1.5× faster; README, \"Performance\"" : null;

    /// <summary>One line: "jemalloc 5.3.0-… (dirty_decay_ms -1: freed pages kept; lg_extent_max_active_fit 20)", or the C
    /// library's malloc.</summary>
    public static string Describe()
    {
        var mallctl = Mallctl();
        if (mallctl == null) return OperatingSystem.IsLinux() ? "glibc malloc" : "the system's malloc";
        byte* version = null;
        nuint size = (nuint)sizeof(byte*);
        string name = Call(mallctl, "version\0"u8, &version, &size) == 0 && version != null
            ? "jemalloc " + Marshal.PtrToStringUTF8((nint)version) : "jemalloc";
        nint decay = 0;
        size = (nuint)sizeof(nint);
        if (Call(mallctl, "opt.dirty_decay_ms\0"u8, &decay, &size) != 0) return name;
        string kept = decay < 0 ? $"dirty_decay_ms {decay}: freed pages kept" : $"dirty_decay_ms {decay}: freed pages returned after a delay";
        nuint fit = 0;
        size = (nuint)sizeof(nuint);
        return Call(mallctl, "opt.lg_extent_max_active_fit\0"u8, &fit, &size) == 0
            ? $"{name} ({kept}; lg_extent_max_active_fit {fit})" : $"{name} ({kept})";
    }

    /// <summary>
    /// Returns jemalloc's kept free pages (all arenas) to the system; false when jemalloc is not this process's malloc.
    /// For a process going idle, not between training steps, whose next step reuses those pages.
    /// </summary>
    public static bool PurgeJemalloc()
    {
        var mallctl = Mallctl();
        return mallctl != null && Call(mallctl, "arena.4096.purge\0"u8, null, null) == 0;   // 4096: MALLCTL_ARENAS_ALL
    }

    /// <summary><c>mallctl(name, value, size, null, 0)</c>: reads a setting into <paramref name="value"/>, or with none runs
    /// the named action.</summary>
    private static int Call(delegate* unmanaged<byte*, void*, nuint*, void*, nuint, int> mallctl, ReadOnlySpan<byte> nameZ, void* value, nuint* size)
    {
        fixed (byte* name = nameZ) return mallctl(name, value, size, null, 0);
    }

    /// <summary>jemalloc's <c>int mallctl(const char*, void* old, size_t* oldlen, void* new, size_t newlen)</c>, or null.</summary>
    private static delegate* unmanaged<byte*, void*, nuint*, void*, nuint, int> Mallctl()
    {
        if (OperatingSystem.IsWindows()) return null;
        return NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "mallctl", out var f)
            ? (delegate* unmanaged<byte*, void*, nuint*, void*, nuint, int>)f : null;
    }
}
