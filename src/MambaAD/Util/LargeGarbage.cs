namespace MambaAD.Util;

/// <summary>
/// Keeps dead images from piling up on the large-object heap: after every <see cref="Every"/> bytes the process
/// allocates, the next call runs a blocking full collection. Decoded images, model inputs and request bodies are
/// arrays of megabytes to hundreds of megabytes that die young, but the GC frees the large-object heap only in a full
/// collection, and it times those from what survived the last one: over the same mutated images (FuzzTests),
/// <c>predict</c> kept a 50-megapixel image's dead copies through later images and peaked at 1.2 GB, or 1.6 GB in
/// one run in five, where 0.63 GB is needed. Callers have a small live heap (the model's tensors are native memory),
/// so a collection is quick.
/// </summary>
internal static class LargeGarbage
{
    /// <summary>Bytes allocated between two collections.</summary>
    internal const long Every = 64L << 20;

    private static long _allocatedAtCollect;

    /// <summary>Runs a full collection when the process has allocated <see cref="Every"/> bytes since the last one.</summary>
    /// <returns>Whether it ran one.</returns>
    public static bool CollectIfDue()
    {
        long allocated = GC.GetTotalAllocatedBytes();
        long last = Interlocked.Read(ref _allocatedAtCollect);
        if (allocated - last < Every || Interlocked.CompareExchange(ref _allocatedAtCollect, allocated, last) != last) return false;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
        return true;
    }
}
