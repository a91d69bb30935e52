using System.Text;

namespace MambaAD.IO;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one, never half of it: the data
/// goes to a temporary file in the same folder, is flushed to the device, and is then renamed over the target, and
/// the folder entry is flushed too (architecture.md, "Writes are atomic"). A failure (full disk, permissions, a
/// folder in the way) removes the temporary file and is one <see cref="MambaADException"/> naming the target.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> atomically with whatever <paramref name="write"/> puts in the stream.</summary>
    /// <exception cref="MambaADException">The file could not be written; the previous content, if any, is intact.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            if (Directory.Exists(full)) throw new MambaADException($"cannot write {full}: it is a folder; give a file path");
            Directory.CreateDirectory(dir);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            Durable.FlushDirectory(dir);
        }
        catch (Exception e) when (IoError.Is(e))
        {
            TryDelete(tmp);
            throw new MambaADException($"cannot write {full}: {IoError.Reason(e)}", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no BOM) atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var b = new UTF8Encoding(false).GetBytes(text); s.Write(b, 0, b.Length); });

    /// <summary>Writes bytes atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes, 0, bytes.Length));

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (IoError.Is(e)) { }
    }
}
