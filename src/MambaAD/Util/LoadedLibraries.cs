namespace MambaAD.Util;

/// <summary>The shared libraries this process has mapped, by file name (Linux: /proc/self/maps). For libraries whose name
/// is not fixed across versions, e.g. the libgomp that libtorch ships under a hashed name.</summary>
internal static class LoadedLibraries
{
    /// <summary>The path of the first mapped file whose name satisfies <paramref name="fileName"/>, or null (none, not
    /// Linux, or the mappings unreadable).</summary>
    public static string? Find(Func<string, bool> fileName)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return File.ReadLines("/proc/self/maps")
                .Select(line => line.IndexOf('/') is var slash and >= 0 ? line[slash..] : null)
                .FirstOrDefault(file => file is not null && fileName(Path.GetFileName(file)));
        }
        catch (IOException)
        {
            return null;
        }
    }
}
