using System.Runtime.InteropServices;
using MambaAD.Benchmarks;
using MambaAD.Util;

namespace MambaAD.Tests.Util;

/// <summary>A fact for glibc's heap (Linux); skipped elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "glibc's heap: Linux only";
    }
}

public sealed unsafe class HeapTrimTests
{
    /// <summary>
    /// The trainer's promise after every step (README, training memory): memory freed in the middle of the heap, which
    /// glibc keeps for reuse on its own, goes back to the system.
    /// </summary>
    [LinuxFact]
    public void Freed_memory_in_the_middle_of_the_heap_goes_back_to_the_system()
    {
        // 48 MB in blocks below glibc's smallest mmap threshold (heap memory), within one heap of a thread's arena (64 MB
        // at most: a heap that empties completely is given back by free itself).
        const int block = 64 << 10, count = 768;
        var blocks = new nint[count];
        for (int i = 0; i < count; i++)
        {
            blocks[i] = (nint)NativeMemory.Alloc(block);
            new Span<byte>((void*)blocks[i], block).Fill(1);   // resident
        }
        try
        {
            double resident = PeakRss.CurrentMegabytes();
            // The last block stays: above the others, it keeps the heap's top from shrinking by itself on free.
            foreach (var b in blocks[..^1]) NativeMemory.Free((void*)b);
            double afterFree = PeakRss.CurrentMegabytes();
            Assert.True(HeapTrim.Run(), "malloc_trim released nothing");
            double afterTrim = PeakRss.CurrentMegabytes();
            Assert.True(resident - afterTrim > 36,
                $"RSS {resident:F0} MB with 48 MB allocated, {afterFree:F0} MB after free, {afterTrim:F0} MB after HeapTrim.Run");
        }
        finally
        {
            NativeMemory.Free((void*)blocks[^1]);
        }
    }
}
