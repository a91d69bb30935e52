using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace MambaAD.Ssm;

/// <summary>
/// Software prefetch of a span of floats, one request per 64-byte line, for the scan kernels' reads that the hardware
/// prefetcher serves badly. A hint only: no effect on results, none where SSE is absent (not x86).
/// </summary>
internal static unsafe class CachePrefetch
{
    /// <summary>Into L2 and the levels below (prefetcht1): data needed after the work in between.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ToL2(float* p, int floats)
    {
        if (!Sse.IsSupported) return;
        for (int o = 0; o < floats; o += 16) Sse.Prefetch1(p + o);
    }

    /// <summary>
    /// Non-temporal (prefetchnta): data read soon and then not again, brought close to the core with as little
    /// displacement of what L2 holds as the processor allows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NonTemporal(float* p, int floats)
    {
        if (!Sse.IsSupported) return;
        for (int o = 0; o < floats; o += 16) Sse.PrefetchNonTemporal(p + o);
    }
}
