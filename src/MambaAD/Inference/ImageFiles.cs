using MambaAD.Imaging;

namespace MambaAD.Inference;

/// <summary>
/// The image files a <c>predict</c> run reads, in the one order every run of the same inputs agrees on (sorted by
/// absolute path, ordinal, duplicates removed), and the folder their output names are relative to.
/// </summary>
/// <param name="Files">Absolute paths, sorted.</param>
/// <param name="Root">The deepest folder that holds every input argument (a folder argument itself, a file argument's folder).</param>
internal sealed record ImageFiles(IReadOnlyList<string> Files, string Root)
{
    /// <summary>Files as given, and the images under folders (recursively). Fails on a path that does not exist.</summary>
    public static ImageFiles Expand(IEnumerable<string> paths)
    {
        var args = paths.ToList();
        var files = new SortedSet<string>(StringComparer.Ordinal);
        var folders = new List<string>();
        foreach (var p in args)
        {
            var full = Path.GetFullPath(p);
            if (File.Exists(full))
            {
                files.Add(full);
                folders.Add(Path.GetDirectoryName(full)!);
            }
            else if (Directory.Exists(full))
            {
                files.UnionWith(Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories).Where(ImageDecoder.IsImage).Select(Path.GetFullPath));
                folders.Add(Path.TrimEndingDirectorySeparator(full));
            }
            else throw new MambaADException($"{p} does not exist: give image files (PNG, JPEG, BMP, WebP, GIF) or folders of them");
        }
        if (files.Count == 0) throw new MambaADException($"no images found in {string.Join(", ", args)} (looked for {string.Join(", ", ImageDecoder.Extensions)})");
        return new ImageFiles([.. files], CommonFolder(folders));
    }

    /// <summary>Given files (sorted here), named relative to their deepest common folder.</summary>
    public static ImageFiles Of(IEnumerable<string> files)
    {
        var full = files.Select(Path.GetFullPath).Distinct().Order(StringComparer.Ordinal).ToList();
        return new ImageFiles(full, CommonFolder(full.Select(f => Path.GetDirectoryName(f)!)));
    }

    /// <summary>
    /// The output file of input <paramref name="index"/> under <paramref name="kind"/> (overlays, masks, maps): the
    /// input's path below <see cref="Root"/>, whole file name kept, plus <paramref name="extension"/> — a/x.png →
    /// overlays/a/x.png.png. Distinct inputs get distinct names, and a name depends only on its input and the root, so
    /// shards and resumed runs agree on it. Relative, with '/' separators.
    /// </summary>
    public string OutputName(int index, string kind, string extension)
    {
        var relative = Path.GetRelativePath(Root, Files[index]);
        if (relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative))
            relative = Files[index].Replace(":", "", StringComparison.Ordinal).TrimStart('/', '\\'); // no common root (another drive)
        return kind + "/" + relative.Replace('\\', '/') + extension;
    }

    private static string CommonFolder(IEnumerable<string> folders)
    {
        string? common = null;
        foreach (var f in folders)
        {
            if (common is null) { common = f; continue; }
            while (!IsWithin(f, common))
            {
                var parent = Path.GetDirectoryName(common);
                if (parent is null) return Path.GetPathRoot(common) ?? common;
                common = parent;
            }
        }
        return common ?? Directory.GetCurrentDirectory();
    }

    private static bool IsWithin(string path, string folder) =>
        path == folder || path.StartsWith(Path.EndsInDirectorySeparator(folder) ? folder : folder + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
