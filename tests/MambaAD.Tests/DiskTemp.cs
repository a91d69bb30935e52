namespace MambaAD.Tests;

/// <summary>
/// Temporary folders on a disk: the system's temp folder unless it is tmpfs (Fedora, Arch), then /var/tmp, then the
/// test binaries' folder. The trainer keeps encoder features in a file in the run folder only on a disk (a tmpfs file
/// is memory), and the tests of that file need one.
/// </summary>
public static class DiskTemp
{
    private static readonly string Parent = new[] { Path.GetTempPath(), "/var/tmp", AppContext.BaseDirectory }
        .First(d => Directory.Exists(d) && new DriveInfo(Path.GetFullPath(d)).DriveFormat is not ("tmpfs" or "ramfs"));

    /// <summary>A new folder named <paramref name="prefix"/> and a random suffix (the caller deletes it).</summary>
    public static string Create(string prefix) => Directory.CreateDirectory(Path.Combine(Parent, prefix + Guid.NewGuid().ToString("N")[..8])).FullName;
}
