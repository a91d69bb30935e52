using MambaAD.Imaging;

namespace MambaAD.Data;

/// <summary>
/// Detects which benchmark layout a data root uses (spec §15). Order: ADer <c>meta.json</c>; VisA
/// (<c>split_csv/1cls.csv</c>); Real-IAD (per-class JSON); class folders with <c>train/</c> and <c>test/</c>
/// (MVTec AD, MPDD, Uni-Medical, BTAD with <c>ok</c>, MVTec 3D-AD with <c>rgb/</c>, plain folders); a single class
/// without the class level (<c>train/</c> and <c>test/</c> directly under the root).
/// </summary>
internal static class DatasetLayout
{
    /// <summary>The layout names accepted by <c>--dataset</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["mvtec", "visa", "mpdd", "btad", "mvtec3d", "medical", "realiad", "meta", "folder"];

    private const string Known =
        "meta (meta.json), visa (split_csv/1cls.csv), realiad (per-class <class>.json), " +
        "mvtec/mpdd/medical/folder (<class>/train/good, <class>/test/<good|defect>, optional <class>/ground_truth/<defect>), " +
        "btad (<class>/train/ok, test/ok|ko), mvtec3d (<class>/train/good/rgb), or one class directly (train/good, test/…)";

    /// <summary>Returns the layout name for <paramref name="root"/>, or throws naming what was found and the layouts read.</summary>
    public static string Detect(string root)
    {
        if (File.Exists(Path.Combine(root, "meta.json"))) return "meta";
        if (File.Exists(Path.Combine(root, "split_csv", "1cls.csv"))) return "visa";
        if (RealIadLayout.FindJsonDir(root) is not null) return "realiad";
        var classDirs = FolderLayout.ClassDirs(root);
        bool single = Directory.Exists(Path.Combine(root, "train")) && Directory.Exists(Path.Combine(root, "test"));
        var dirs = single ? [root] : classDirs;
        if (dirs.Count > 0)
        {
            if (dirs.Any(d => Directory.Exists(Path.Combine(d, "train", "ok")))) return "btad";
            if (dirs.Any(d => Directory.Exists(Path.Combine(d, "train", "good", "rgb")))) return "mvtec3d";
            var name = Path.GetFileName(root.TrimEnd(Path.DirectorySeparatorChar)).ToLowerInvariant();
            return name is "mvtec" or "mpdd" or "medical" ? name : "folder";
        }
        var found = Directory.Exists(root)
            ? Directory.EnumerateFileSystemEntries(root).Select(p => Path.GetFileName(p) + (Directory.Exists(p) ? "/" : "")).Order(StringComparer.Ordinal).ToList()
            : [];
        string listing = found.Count == 0 ? "nothing" : string.Join(", ", found.Take(12)) + (found.Count > 12 ? $", … ({found.Count} entries)" : "");
        throw new MambaADException($"{root}: unknown dataset layout; found {listing}; layouts read: {Known}");
    }

    /// <summary>The official class order of a benchmark, used when a root holds exactly a subset of those classes.</summary>
    internal static IReadOnlyList<string>? OfficialOrder(string layout) => layout switch
    {
        "mvtec" or "folder" => ["carpet", "grid", "leather", "tile", "wood", "bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper"],
        "visa" => ["pcb1", "pcb2", "pcb3", "pcb4", "macaroni1", "macaroni2", "capsules", "candle", "cashew", "chewinggum", "fryum", "pipe_fryum"],
        "mvtec3d" => ["bagel", "cable_gland", "carrot", "cookie", "dowel", "foam", "peach", "potato", "rope", "tire"],
        "mpdd" => ["bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes"],
        "btad" => ["01", "02", "03"],
        "medical" => ["brain", "liver", "retinal"],
        _ => null,
    };

    /// <summary>Official order when every class is in it, else ordinal order.</summary>
    internal static List<string> Order(string layout, IEnumerable<string> classes)
    {
        var list = classes.Distinct().ToList();
        var official = OfficialOrder(layout);
        if (official is not null && list.All(official.Contains)) return official.Where(list.Contains).ToList();
        return list.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Image files of a folder in Python <c>sorted()</c> order (ordinal).</summary>
    internal static List<string> Images(string dir) =>
        Directory.Exists(dir) ? Directory.EnumerateFiles(dir).Where(ImageDecoder.IsImage).Order(StringComparer.Ordinal).ToList() : [];
}
