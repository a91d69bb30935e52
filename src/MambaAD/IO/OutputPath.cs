namespace MambaAD.IO;

/// <summary>
/// Where outputs go. <see cref="File"/> and <see cref="Folder"/> check an output path before the work that fills
/// it starts, so that a wrong kind of path (a folder where a file goes, a file where a folder goes, a read-only or
/// missing place) is one line at once rather than a stack trace at the end; <see cref="Under"/> joins names read from
/// data files (class and defect names) below an output folder and refuses any that would leave it.
/// </summary>
/// <remarks>
/// Errors are <see cref="MambaADException"/>s naming the path and carrying <c>setting</c>, the library setting (or
/// option name) that holds the path, so that a front end can name its own option for it.
/// </remarks>
internal static class OutputPath
{
    /// <summary>
    /// Checks that <paramref name="path"/> can be written as a file: not an existing folder, its folder a folder
    /// (created if missing) where files can be created. Returns the full path.
    /// </summary>
    /// <exception cref="MambaADException">The path cannot hold the file.</exception>
    public static string File(string path, string? setting = null)
    {
        var full = Full(path, setting);
        if (Directory.Exists(full))
            throw Error($"{full} is a folder: give a file path to write", setting);
        Writable(Path.GetDirectoryName(full)!, full, setting);
        return full;
    }

    /// <summary>
    /// Checks that <paramref name="path"/> can be written into as a folder: not an existing file, created if
    /// missing, files can be created in it. Returns the full path.
    /// </summary>
    /// <exception cref="MambaADException">The path cannot hold the folder.</exception>
    public static string Folder(string path, string? setting = null)
    {
        var full = Full(path, setting);
        if (System.IO.File.Exists(full))
            throw Error($"{full} is a file: give a folder to write into", setting);
        Writable(full, full, setting);
        return full;
    }

    /// <summary>
    /// <paramref name="root"/>/<paramref name="parts"/>… for names that come from data (a class, a defect type, a
    /// file stem): each part must be one plain name — not empty, not "." or "..", no separator, not rooted — so that
    /// the result stays inside <paramref name="root"/>.
    /// </summary>
    /// <exception cref="MambaADException">A part would leave the root.</exception>
    public static string Under(string root, params string[] parts)
    {
        var fullRoot = Path.GetFullPath(root);
        foreach (var part in parts)
            if (!IsPlainName(part))
                throw new MambaADException($"refusing to write below {fullRoot} under the name '{part}': names from data files must be plain file names (no '/', '\\', '..' or drive)");
        var joined = Path.GetFullPath(Path.Combine([fullRoot, .. parts]));
        var prefix = Path.EndsInDirectorySeparator(fullRoot) ? fullRoot : fullRoot + Path.DirectorySeparatorChar;
        if (!joined.StartsWith(prefix, StringComparison.Ordinal))
            throw new MambaADException($"refusing to write {joined}: it is outside {fullRoot}");
        return joined;
    }

    /// <summary>One path component that stays where it is put: what <see cref="Under"/> accepts.</summary>
    public static bool IsPlainName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0 && !Path.IsPathRooted(name)
        && !(OperatingSystem.IsWindows() && name.Contains(':'));

    private static string Full(string path, string? setting)
    {
        if (string.IsNullOrWhiteSpace(path)) throw Error("an output path is empty: give a file or folder path", setting);
        try { return Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw Error($"'{path}' is not a usable path ({e.Message})", setting);
        }
    }

    /// <summary>Creates <paramref name="dir"/> if needed and proves that a file can be created in it (then removes the probe).</summary>
    private static void Writable(string dir, string target, string? setting)
    {
        for (var d = dir; d is not null; d = Path.GetDirectoryName(d))
        {
            if (System.IO.File.Exists(d))
                throw Error($"cannot write {target}: {d} is a file, not a folder", setting);
            if (Directory.Exists(d)) break;
        }
        var probe = Path.Combine(dir, $".mambaad-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(dir);
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (IoError.Is(e))
        {
            throw Error($"cannot write {target}: {IoError.Reason(e)}", setting);
        }
    }

    private static MambaADException Error(string message, string? setting) =>
        setting is null ? new MambaADException(message) : new MambaADException(message, setting);
}
