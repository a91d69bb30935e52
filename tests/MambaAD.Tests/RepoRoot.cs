namespace MambaAD.Tests;

/// <summary>The clone the tests run from: the folder holding MambaAD.slnx above the test binaries.</summary>
public static class RepoRoot
{
    public static readonly string Path = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "MambaAD.slnx"))) return dir.FullName;
        throw new InvalidOperationException("MambaAD.slnx not found above the test binaries");
    }
}
