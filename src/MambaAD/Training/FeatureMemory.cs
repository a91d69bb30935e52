using System.Runtime.InteropServices;

namespace MambaAD.Training;

/// <summary>
/// Fixed-size slots of bytes in one block of native memory, reserved whole when the run starts: its pages are taken as
/// slots are written, and it is one allocation that lives as long as the run. Holding each image's features in tensors
/// of their own instead (three per image, of 0.25–1 MB, allocated among a training step's activations) left the
/// allocator's heap fragmented around them: resident memory grew by megabytes per step for as long as a run went on
/// (docs/performance.md, phase 27).
/// </summary>
internal sealed unsafe class FeatureMemory : FeatureSlots
{
    private byte* _block;

    public FeatureMemory(int slots, long slotBytes) : base(slots, slotBytes) =>
        _block = (byte*)NativeMemory.Alloc(checked((nuint)(slots * slotBytes)));

    public override void Write(int slot, long offset, ReadOnlySpan<byte> bytes) =>
        bytes.CopyTo(new Span<byte>(Block + At(slot, offset, bytes.Length), bytes.Length));

    public override void Read(int slot, long offset, Span<byte> bytes) =>
        new ReadOnlySpan<byte>(Block + At(slot, offset, bytes.Length), bytes.Length).CopyTo(bytes);

    private byte* Block => _block != null ? _block : throw new ObjectDisposedException(nameof(FeatureMemory));

    public override void Dispose()
    {
        NativeMemory.Free(_block);
        _block = null;
    }
}
