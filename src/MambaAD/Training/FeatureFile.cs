using Microsoft.Win32.SafeHandles;

namespace MambaAD.Training;

/// <summary>
/// Fixed-size slots of bytes in a scratch file whose blocks are reserved when it is created: where
/// <see cref="EncoderFeatureCache"/> keeps features that do not fit its memory budget. The file has no name while it is
/// used (Unix: unlinked right after it is opened; Windows: deleted on close), so no run, however it ends, kill -9
/// included, leaves it behind, and its space returns to the disk when the process exits. Reads go through the page
/// cache: what the machine's free memory holds costs no disk reads.
/// </summary>
internal sealed class FeatureFile : FeatureSlots
{
    /// <summary>
    /// Free space the file must leave on its disk: checkpoints, the run's logs and everything else on the disk still
    /// need room, and a training run must never be the one that fills it.
    /// </summary>
    public const long ReserveBytes = 2L << 30;

    private readonly SafeFileHandle _handle;

    private FeatureFile(SafeFileHandle handle, string path, long slotBytes, int slots) : base(slots, slotBytes) =>
        (_handle, Path) = (handle, path);

    /// <summary>Where the file was created (it has no name any more on Unix).</summary>
    public string Path { get; }

    /// <summary>
    /// A file of <paramref name="slots"/> × <paramref name="slotBytes"/> in <paramref name="directory"/> when its disk
    /// has room for it and <see cref="ReserveBytes"/> more and is a disk (not tmpfs), else null; <paramref name="whyNot"/>
    /// then says why.
    /// </summary>
    public static FeatureFile? Create(string directory, int slots, long slotBytes, out string? whyNot)
    {
        long bytes = slots * slotBytes;
        try
        {
            var drive = new DriveInfo(System.IO.Path.GetFullPath(directory));
            if (drive.DriveFormat is "tmpfs" or "ramfs")
            {
                whyNot = $"{directory} is on {drive.DriveFormat}, which is memory: the file would take what the budget keeps free";
                return null;
            }
            long free = drive.AvailableFreeSpace;
            if (free < bytes + ReserveBytes)
            {
                whyNot = $"{directory} has {EncoderFeatureCache.Gb(free)} free, and the features need {EncoderFeatureCache.Gb(bytes)} plus {EncoderFeatureCache.Gb(ReserveBytes)} left free";
                return null;
            }
            whyNot = null;
            return Open(System.IO.Path.Combine(directory, $".encoder-features-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp"), slots, slotBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            whyNot = $"{directory}: {e.Message}";   // a full disk at the reservation: "…because the disk was full"
            return null;
        }
    }

    /// <summary>The file at <paramref name="path"/>, its blocks reserved where the file system can (a full disk throws
    /// <see cref="IOException"/> here rather than at a write), then unlinked on Unix.</summary>
    internal static FeatureFile Open(string path, int slots, long slotBytes)
    {
        var options = OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None;
        var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, options, slots * slotBytes);
        try
        {
            if (!OperatingSystem.IsWindows()) File.Delete(path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return new FeatureFile(handle, path, slotBytes, slots);
    }

    /// <inheritdoc/>
    /// <exception cref="IOException">The write failed: a disk that filled although the blocks were asked for (some file
    /// systems do not reserve them), or the process's file-size limit (<c>ulimit -f</c>), which a reservation passes.</exception>
    public override void Write(int slot, long offset, ReadOnlySpan<byte> bytes)
    {
        long at = At(slot, offset, bytes.Length);
        try
        {
            RandomAccess.Write(_handle, bytes, at);
        }
        catch (ArgumentOutOfRangeException e)   // EFBIG, as .NET reports it
        {
            throw new IOException($"the file would pass this process's file-size limit: {e.Message}", e);
        }
    }

    public override void Read(int slot, long offset, Span<byte> bytes)
    {
        long at = At(slot, offset, bytes.Length);
        for (int done = 0; done < bytes.Length;)
        {
            int n = RandomAccess.Read(_handle, bytes[done..], at + done);
            if (n == 0) throw new IOException($"the encoder-feature file {Path} ended before slot {slot} (it has no name and cannot have been changed: a disk fault)");
            done += n;
        }
    }

    public override void Dispose() => _handle.Dispose();
}
