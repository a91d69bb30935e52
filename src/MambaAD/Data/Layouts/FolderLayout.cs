namespace MambaAD.Data.Layouts;

/// <summary>
/// Class-folder layouts (spec §15): MVTec AD, MPDD, Uni-Medical and plain folders
/// (<c>&lt;class&gt;/train/good</c>, <c>&lt;class&gt;/test/&lt;good|defect…&gt;</c>, optional
/// <c>&lt;class&gt;/ground_truth/&lt;defect&gt;/</c> with <c>&lt;stem&gt;_mask.*</c> or <c>&lt;stem&gt;.*</c>); BTAD (normal
/// folder <c>ok</c>, masks paired by sorted index because extensions differ); MVTec 3D-AD (RGB only: images in
/// <c>…/rgb/</c>, masks in <c>…/gt/</c>, train + validation are training data). A root with <c>train/</c> and
/// <c>test/</c> directly is one class named after the root folder. This class is the plain-folder layout and the base
/// of the others of the family, which differ in name, detection, class order and the hooks below.
/// </summary>
internal class FolderLayout : IDatasetLayout
{
    public virtual string Name => "folder";

    public virtual string Looks => "<class>/train/good, <class>/test/<good|defect>, optional <class>/ground_truth/<defect>; or one class directly";

    /// <summary>The benchmark's official class order, used when a root holds only classes of it.</summary>
    protected virtual IReadOnlyList<string>? OfficialOrder => MvtecLayout.Classes;

    /// <summary>The splits whose normal images are training data.</summary>
    protected virtual IReadOnlyList<string> TrainSplits => ["train"];

    /// <summary>Images sit in an <c>rgb/</c> folder and masks in a <c>gt/</c> folder beside it (MVTec 3D-AD).</summary>
    protected virtual bool RgbSubfolders => false;

    /// <summary>Masks pair with images by sorted index, not by name (BTAD: extensions differ by class).</summary>
    protected virtual bool PairMasksByIndex => false;

    /// <summary>Any folder of the family: class folders with train/ and test/, or both directly under the root.</summary>
    public virtual bool Matches(string root) => ClassDirs(root).Count > 0;

    /// <summary>The class folders: the root itself when it has train/ and test/, else its sub-folders that have them.</summary>
    protected static List<string> ClassDirs(string root)
    {
        if (!Directory.Exists(root)) return [];
        if (Directory.Exists(Path.Combine(root, "train")) && Directory.Exists(Path.Combine(root, "test"))) return [root];
        return Directory.EnumerateDirectories(root)
            .Where(d => Directory.Exists(Path.Combine(d, "train")) && Directory.Exists(Path.Combine(d, "test")))
            .Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The root folder's own name, lower case (MVTec AD, MPDD and Uni-Medical are told apart by it).</summary>
    protected static string RootName(string root) => Path.GetFileName(root.TrimEnd(Path.DirectorySeparatorChar)).ToLowerInvariant();

    public RawDataset Read(string root, Problems problems)
    {
        var dirs = ClassDirs(root);
        if (dirs.Count == 0)
            throw new MambaADException($"{root}: no class folders with train/ and test/ (expected the {Name} layout: <class>/train/good and <class>/test/<good|defect>)");
        var train = new List<Sample>();
        var test = new List<Sample>();
        var names = new List<string>();
        foreach (var dir in dirs)
        {
            string cls = Path.GetFileName(dir.TrimEnd(Path.DirectorySeparatorChar));
            names.Add(cls);
            ReadClass(dir, cls, problems, train, test);
        }
        return new RawDataset(DatasetLayouts.Order(OfficialOrder, names), train, test);
    }

    private void ReadClass(string dir, string cls, Problems problems, List<Sample> train, List<Sample> test)
    {
        bool rgb = RgbSubfolders;
        string ImagesDir(string d) => rgb ? Path.Combine(d, "rgb") : d;
        string? normal = null;
        foreach (var split in TrainSplits)
        {
            var splitDir = Path.Combine(dir, split);
            if (!Directory.Exists(splitDir)) continue;
            normal ??= Directory.Exists(Path.Combine(splitDir, "ok")) && !Directory.Exists(Path.Combine(splitDir, "good")) ? "ok" : "good";
            foreach (var img in DatasetLayouts.Images(ImagesDir(Path.Combine(splitDir, normal))))
                train.Add(new Sample(img, cls, "good", null, false));
        }
        normal ??= "good";
        var testDir = Path.Combine(dir, "test");
        var gtRoot = Path.Combine(dir, "ground_truth");
        bool classHasMasks = rgb
            ? Directory.EnumerateDirectories(testDir).Any(d => Directory.Exists(Path.Combine(d, "gt")))
            : Directory.Exists(gtRoot);
        foreach (var defectDir in Directory.EnumerateDirectories(testDir).Order(StringComparer.Ordinal))
        {
            string defect = Path.GetFileName(defectDir);
            var images = DatasetLayouts.Images(ImagesDir(defectDir));
            bool isNormal = defect == normal || defect == "good";
            if (isNormal)
            {
                foreach (var img in images) test.Add(new Sample(img, cls, "good", null, false));
                continue;
            }
            var maskDir = rgb ? Path.Combine(defectDir, "gt") : Path.Combine(gtRoot, defect);
            var masks = DatasetLayouts.Images(maskDir);
            if (PairMasksByIndex && classHasMasks)
            {
                // BTAD: image and mask extensions differ by class, so pair by sorted index (the official generator does).
                if (masks.Count != images.Count)
                {
                    problems.Report($"{maskDir}: {masks.Count} masks for {images.Count} images in {defectDir} (BTAD pairs them by sorted index, so the counts must match)");
                    continue;
                }
                for (int i = 0; i < images.Count; i++) test.Add(new Sample(images[i], cls, defect, masks[i], true));
                continue;
            }
            var byStem = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var m in masks)
            {
                var stem = Path.GetFileNameWithoutExtension(m);
                byStem.TryAdd(stem, m);
            }
            foreach (var img in images)
            {
                string stem = Path.GetFileNameWithoutExtension(img);
                string? mask = byStem.GetValueOrDefault(stem + "_mask") ?? byStem.GetValueOrDefault(stem);
                if (mask is null && classHasMasks)
                {
                    problems.Report($"{img}: defect image has no mask (expected {Path.Combine(maskDir, stem + "_mask.png")} or {stem}.* there)");
                    continue;
                }
                test.Add(new Sample(img, cls, defect, mask, true));
            }
        }
    }
}
