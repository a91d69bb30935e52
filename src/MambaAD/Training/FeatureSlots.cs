namespace MambaAD.Training;

/// <summary>
/// Fixed-size slots of bytes where <see cref="EncoderFeatureCache"/> keeps one image's features each: one block of
/// memory (<see cref="FeatureMemory"/>) or a scratch file (<see cref="FeatureFile"/>). Every slot is the same size and
/// is written once, so the store is allocated whole when the run starts and never grows, fragments or moves.
/// </summary>
internal abstract class FeatureSlots : IDisposable
{
    protected FeatureSlots(int slots, long slotBytes) => (Slots, SlotBytes) = (slots, slotBytes);

    public int Slots { get; }

    public long SlotBytes { get; }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/> within slot <paramref name="slot"/>.</summary>
    /// <exception cref="IOException">The store could not take them (a file's disk or size limit).</exception>
    public abstract void Write(int slot, long offset, ReadOnlySpan<byte> bytes);

    /// <summary>Reads <paramref name="bytes"/>.Length bytes at <paramref name="offset"/> within slot <paramref name="slot"/>.</summary>
    public abstract void Read(int slot, long offset, Span<byte> bytes);

    /// <summary>Where <paramref name="length"/> bytes at <paramref name="offset"/> of slot <paramref name="slot"/> start in the store.</summary>
    protected long At(int slot, long offset, int length) =>
        (uint)slot < (uint)Slots && offset >= 0 && offset + length <= SlotBytes
            ? slot * SlotBytes + offset
            : throw new InvalidOperationException($"slot {slot}, bytes {offset}…{offset + length}: outside {Slots} slots of {SlotBytes} bytes");

    public abstract void Dispose();
}
