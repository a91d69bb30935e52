using System.Runtime.InteropServices;

namespace MambaAD.Ssm;

/// <summary>
/// One native scratch buffer per thread for the scan kernels, grown on demand and kept: fresh pages on every call
/// cost ~10 % of a forward pass in page faults. At most the largest request per thread stays allocated (≈ 6·L·d
/// floats of the backward).
/// </summary>
internal static unsafe class ScratchBuffer
{
    [ThreadStatic] private static IntPtr _scratch;
    [ThreadStatic] private static long _scratchFloats;

    /// <summary>The calling thread's buffer of at least <paramref name="floats"/> floats, 64-byte aligned, contents undefined.</summary>
    public static float* ForThisThread(long floats)
    {
        if (_scratchFloats < floats)
        {
            if (_scratch != IntPtr.Zero) NativeMemory.AlignedFree((void*)_scratch);
            _scratch = (IntPtr)NativeMemory.AlignedAlloc((nuint)(floats * 4 + 64), 64);
            _scratchFloats = floats;
        }
        return (float*)_scratch;
    }
}
