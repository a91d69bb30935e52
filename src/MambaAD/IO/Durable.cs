using System.Runtime.InteropServices;

namespace MambaAD.IO;

/// <summary>
/// fsync for files and folders. A rename is only as durable as the folder entry that records it, and a file's bytes
/// only as durable as its last fsync: writers that promise "the old or the new, never a mix" across a crash of the
/// machine flush both (POSIX; on Windows, folder entries need no separate flush and the call is a no-op).
/// </summary>
internal static partial class Durable
{
    /// <summary>Flushes a written file's data and metadata to the device.</summary>
    /// <exception cref="IOException">The device reported an error (e.g. it is full).</exception>
    public static void FlushFile(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Flushes every file under <paramref name="dir"/> (recursively), then the folders themselves.</summary>
    public static void FlushTree(string dir)
    {
        foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)) FlushFile(file);
        foreach (var sub in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories)) FlushDirectory(sub);
        FlushDirectory(dir);
    }

    /// <summary>Flushes a folder's entries (creations, renames, deletions in it) to the device.</summary>
    public static void FlushDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(dir, OpenReadOnly | (OperatingSystem.IsMacOS() ? 0x100000 : 0x10000)); // O_DIRECTORY
        if (fd < 0) throw new IOException($"cannot open the folder {dir} to flush it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            // Some file systems refuse fsync on a folder (EINVAL): their folder entries are durable without it.
            if (Fsync(fd) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != EINVAL)
                throw new IOException($"cannot flush the folder {dir} (errno {errno})", errno);
        }
        finally
        {
            Close(fd);
        }
    }

    private const int OpenReadOnly = 0;
    private const int EINVAL = 22;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
