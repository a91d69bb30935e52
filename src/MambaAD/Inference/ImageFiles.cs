using MambaAD.Imaging;

namespace MambaAD.Inference;

/// <summary>Expands image paths and folders into the image files that predict reads.</summary>
internal static class ImageFiles
{
    /// <summary>Files as given, and the images under folders (recursively, sorted). Fails on a path that does not exist.</summary>
    public static IReadOnlyList<string> Expand(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (File.Exists(p)) files.Add(Path.GetFullPath(p));
            else if (Directory.Exists(p))
                files.AddRange(Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories)
                    .Where(ImageDecoder.IsImage).Select(Path.GetFullPath).Order(StringComparer.Ordinal));
            else throw new MambaADException($"{p} does not exist: give image files (PNG, JPEG, BMP, WebP, GIF) or folders of them");
        }
        if (files.Count == 0) throw new MambaADException($"no images found in {string.Join(", ", paths)} (looked for {string.Join(", ", ImageDecoder.Extensions)})");
        return files;
    }

    /// <summary>Output names per file: the stem, made unique with _2, _3, … when two files share it.</summary>
    public static IReadOnlyList<string> UniqueStems(IReadOnlyList<string> files)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        return files.Select(f =>
        {
            var stem = Path.GetFileNameWithoutExtension(f);
            int n = seen[stem] = seen.GetValueOrDefault(stem) + 1;
            return n == 1 ? stem : $"{stem}_{n}";
        }).ToList();
    }
}
