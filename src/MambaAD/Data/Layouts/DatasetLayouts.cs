using MambaAD.Imaging;

namespace MambaAD.Data.Layouts;

/// <summary>
/// The registry of dataset layouts (spec §15), in detection order: ADer <c>meta.json</c>; VisA
/// (<c>split_csv/1cls.csv</c>); Real-IAD (per-class JSON); then the class-folder family (<c>&lt;class&gt;/train</c>
/// and <c>&lt;class&gt;/test</c>, or both directly under the root for a single class): BTAD (<c>train/ok</c>),
/// MVTec 3D-AD (<c>train/good/rgb</c>), MVTec AD / MPDD / Uni-Medical (by the root's name), plain folders.
/// </summary>
internal static class DatasetLayouts
{
    /// <summary>Every layout, in the order detection tries them.</summary>
    public static IReadOnlyList<IDatasetLayout> All { get; } =
    [
        new MetaJsonLayout(), new VisaLayout(), new RealIadLayout(),
        new BtadLayout(), new Mvtec3dLayout(), new MvtecLayout(), new MpddLayout(), new MedicalLayout(), new FolderLayout(),
    ];

    /// <summary>The layout names <c>--dataset</c> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(l => l.Name)];

    /// <summary>The layout called <paramref name="name"/> (any case), or a one-line error listing the names.</summary>
    public static IDatasetLayout Named(string name) =>
        All.FirstOrDefault(l => string.Equals(l.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new MambaADException($"dataset layout '{name}' is unknown; the layouts are {string.Join(", ", Names)}", nameof(DatasetOptions.Layout));

    /// <summary>The first layout <paramref name="root"/> matches, or an error naming what was found and the layouts read.</summary>
    public static IDatasetLayout Detect(string root)
    {
        if (All.FirstOrDefault(l => l.Matches(root)) is { } layout) return layout;
        var found = Directory.Exists(root)
            ? Directory.EnumerateFileSystemEntries(root).Select(p => Path.GetFileName(p) + (Directory.Exists(p) ? "/" : "")).Order(StringComparer.Ordinal).ToList()
            : [];
        string listing = found.Count == 0 ? "nothing" : string.Join(", ", found.Take(12)) + (found.Count > 12 ? $", … ({found.Count} entries)" : "");
        throw new MambaADException($"{root}: unknown dataset layout; found {listing}; layouts read: {string.Join(", ", All.Select(l => $"{l.Name} ({l.Looks})"))}");
    }

    /// <summary><paramref name="official"/> restricted to the classes found when it holds them all, else ordinal order.</summary>
    public static List<string> Order(IReadOnlyList<string>? official, IEnumerable<string> classes)
    {
        var list = classes.Distinct().ToList();
        if (official is not null && list.All(official.Contains)) return official.Where(list.Contains).ToList();
        return list.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Image files of a folder in Python <c>sorted()</c> order (ordinal).</summary>
    public static List<string> Images(string dir) =>
        Directory.Exists(dir) ? Directory.EnumerateFiles(dir).Where(ImageDecoder.IsImage).Order(StringComparer.Ordinal).ToList() : [];
}
