using System.Globalization;
using System.Text;
using MambaAD.Imaging;

namespace MambaAD.Demo;

/// <summary>
/// Generates the small procedural multi-class defect dataset behind <c>mambaad demo</c>, in the MVTec AD layout:
/// <c>&lt;class&gt;/train/good/NNN.png</c>, <c>&lt;class&gt;/test/good/NNN.png</c>, <c>&lt;class&gt;/test/&lt;defect&gt;/NNN.png</c>
/// and <c>&lt;class&gt;/ground_truth/&lt;defect&gt;/NNN_mask.png</c> (8-bit grey, 0/255).
/// </summary>
/// <remarks>
/// <para>Classes: <c>carpet</c> (woven texture: hole, stain, scratch), <c>tile</c> (ceramic tiles and grout: crack,
/// stain, hole), <c>washer</c> (metal ring: scratch, crack, stain), <c>capsule</c> (two-tone capsule: scratch, crack,
/// hole). Images are 8-bit RGB PNG.</para>
/// <para>Deterministic: every image has its own <see cref="Random"/> seeded from (seed, class, split, folder, index)
/// by a stable hash, so the same options give byte-identical files whatever the thread scheduling.</para>
/// <para>Masks are exact: a mask pixel is 255 exactly when the defect's opacity at that pixel is non-zero, and only
/// those pixels are blended (see <see cref="DefectPainter"/>); sensor noise is added identically with and without
/// the defect, so the image differs from its defect-free rendering only inside the mask.</para>
/// <para>Completeness: a <c>.complete</c> file describing the options is written last. If it is present with the
/// same description (and the expected files are there) nothing is regenerated; otherwise the class folders are
/// deleted and rewritten. A non-empty folder that was not made by this generator is never touched.</para>
/// </remarks>
public static class SyntheticDataset
{
    /// <summary>Generator version, part of the <c>.complete</c> description: bump it when the drawing changes.</summary>
    private const string Version = "mambaad-synthetic 1";
    private const string CompleteFile = ".complete";
    private const string StampFile = ".mambaad-synthetic";

    /// <summary>All class names, in generation order.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ClassPainter.All.Select(p => p.Name).ToList();

    /// <summary>All defect types used by at least one class.</summary>
    public static IReadOnlyList<string> DefectTypeNames => DefectPainter.All;

    /// <summary>The defect types of <paramref name="className"/>.</summary>
    /// <exception cref="MambaADException">Unknown class.</exception>
    public static IReadOnlyList<string> DefectTypes(string className) => Painter(className).DefectTypes;

    /// <summary>
    /// Writes the dataset under <paramref name="root"/> (created if needed), or reuses it when a complete dataset
    /// with the same options is already there.
    /// </summary>
    /// <exception cref="MambaADException">Invalid options, unknown class, a non-empty folder not made by this generator, or the folder is not writable.</exception>
    public static SyntheticDatasetInfo Generate(string root, SyntheticDatasetOptions? options = null)
    {
        options ??= new SyntheticDatasetOptions();
        root = Path.GetFullPath(root);
        var painters = Validate(options);
        string description = Describe(options, painters);
        try
        {
            if (IsComplete(root, description, painters, options))
                return Info(root, painters, options, reused: true);
            Prepare(root);
            File.WriteAllText(Path.Combine(root, StampFile), Version + "\n");
            var jobs = Jobs(painters, options);
            var errors = new List<Exception>();
            Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, job =>
            {
                var sample = Render(job.Painter, job.Split, job.Folder, job.Index, options.Seed, options.ImageSize, keepClean: false);
                string stem = job.Index.ToString("D3", CultureInfo.InvariantCulture);
                string cls = Path.Combine(root, job.Painter.Name);
                WriteFile(Path.Combine(cls, job.Split, job.Folder, stem + ".png"), ImageEncoder.PngRgb(sample.Rgb, options.ImageSize, options.ImageSize));
                if (sample.Mask is not null)
                    WriteFile(Path.Combine(cls, "ground_truth", job.Folder, stem + "_mask.png"), ImageEncoder.PngGrey(sample.Mask, options.ImageSize, options.ImageSize));
            });
            WriteFile(Path.Combine(root, CompleteFile), Encoding.UTF8.GetBytes(description));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException
                                  || e is AggregateException { InnerExceptions: var inner } && inner.All(x => x is IOException or UnauthorizedAccessException))
        {
            var cause = e is AggregateException a ? a.InnerExceptions[0] : e;
            throw new MambaADException($"{root}: cannot write the demo dataset ({cause.Message}); choose a writable folder", cause);
        }
        return Info(root, painters, options, reused: false);
    }

    /// <summary>One rendered image: RGB bytes (HWC), the same image without its defect, and the 0/255 mask (null for normal images).</summary>
    internal sealed record RenderedSample(byte[] Rgb, byte[]? CleanRgb, byte[]? Mask, float[]? Opacity);

    /// <summary>
    /// Renders one image exactly as <see cref="Generate"/> does. <paramref name="folder"/> is <c>good</c> or a
    /// defect type; <paramref name="keepClean"/> also returns the defect-free rendering of the same image.
    /// </summary>
    internal static RenderedSample Render(string className, string split, string folder, int index, int seed, int size, bool keepClean) =>
        Render(Painter(className), split, folder, index, seed, size, keepClean);

    private static RenderedSample Render(ClassPainter painter, string split, string folder, int index, int seed, int size, bool keepClean)
    {
        string idx = index.ToString(CultureInfo.InvariantCulture);
        var rng = new Random(Rng.Derive(seed, painter.Name, split, folder, idx));
        var buffer = new RenderBuffer(size);
        var region = painter.Paint(buffer, rng);
        var noise = Rng.SensorNoise(rng, size, painter.NoiseSigma);
        if (folder == "good") return new RenderedSample(buffer.ToBytes(noise), null, null, null);

        var clean = keepClean ? buffer.ToBytes(noise) : null;
        var defectRng = new Random(Rng.Derive(seed, painter.Name, split, folder, idx, "defect"));
        var opacity = DefectPainter.Paint(buffer, folder, region, defectRng);
        var mask = new byte[size * size];
        for (int i = 0; i < mask.Length; i++) mask[i] = opacity[i] > 0 ? (byte)255 : (byte)0;
        return new RenderedSample(buffer.ToBytes(noise), clean, mask, keepClean ? opacity : null);
    }

    private sealed record Job(ClassPainter Painter, string Split, string Folder, int Index);

    private static List<Job> Jobs(IReadOnlyList<ClassPainter> painters, SyntheticDatasetOptions o)
    {
        var jobs = new List<Job>();
        foreach (var p in painters)
        {
            for (int i = 0; i < o.TrainPerClass; i++) jobs.Add(new Job(p, "train", "good", i));
            for (int i = 0; i < o.TestGoodPerClass; i++) jobs.Add(new Job(p, "test", "good", i));
            foreach (var d in p.DefectTypes)
                for (int i = 0; i < o.TestDefectPerType; i++) jobs.Add(new Job(p, "test", d, i));
        }
        return jobs;
    }

    private static ClassPainter Painter(string name) =>
        ClassPainter.All.FirstOrDefault(p => p.Name == name)
        ?? throw new MambaADException($"demo dataset: unknown class '{name}'; use some of {string.Join(", ", ClassNames)}");

    private static List<ClassPainter> Validate(SyntheticDatasetOptions o)
    {
        if (o.ImageSize is < 64 or > 2048)
            throw new MambaADException($"demo dataset: image size {o.ImageSize} is out of range; use 64 to 2048 (default 256)");
        if (o.TrainPerClass < 1)
            throw new MambaADException($"demo dataset: {o.TrainPerClass} training images per class; use at least 1");
        if (o.TestGoodPerClass < 0 || o.TestDefectPerType < 0 || o.TestGoodPerClass + o.TestDefectPerType == 0)
            throw new MambaADException($"demo dataset: test counts {o.TestGoodPerClass} good / {o.TestDefectPerType} per defect type; use non-negative counts with at least one test image");
        var names = o.Classes ?? ClassNames;
        if (names.Count == 0) throw new MambaADException($"demo dataset: no classes selected; use some of {string.Join(", ", ClassNames)}");
        var dup = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new MambaADException($"demo dataset: class '{dup.Key}' is listed twice");
        return names.Select(Painter).ToList();
    }

    private static string Describe(SyntheticDatasetOptions o, IReadOnlyList<ClassPainter> painters) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Version}\nseed={o.Seed}\nsize={o.ImageSize}\ntrain={o.TrainPerClass}\ntest_good={o.TestGoodPerClass}\ntest_defect={o.TestDefectPerType}\nclasses={string.Join(",", painters.Select(p => p.Name))}\n");

    private static bool IsComplete(string root, string description, IReadOnlyList<ClassPainter> painters, SyntheticDatasetOptions o)
    {
        var marker = Path.Combine(root, CompleteFile);
        if (!File.Exists(marker) || File.ReadAllText(marker) != description) return false;
        foreach (var p in painters)
        {
            string cls = Path.Combine(root, p.Name);
            if (Count(Path.Combine(cls, "train", "good")) != o.TrainPerClass) return false;
            if (Count(Path.Combine(cls, "test", "good")) != o.TestGoodPerClass) return false;
            foreach (var d in p.DefectTypes)
                if (Count(Path.Combine(cls, "test", d)) != o.TestDefectPerType || Count(Path.Combine(cls, "ground_truth", d)) != o.TestDefectPerType)
                    return false;
        }
        return true;
    }

    private static int Count(string dir) => Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*.png").Count() : -1;

    /// <summary>Makes <paramref name="root"/> an empty-of-our-classes folder, refusing to clear a folder this generator did not make.</summary>
    private static void Prepare(string root)
    {
        if (File.Exists(root)) throw new MambaADException($"{root}: is a file; give a folder for the demo dataset");
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any() && !File.Exists(Path.Combine(root, StampFile)))
            throw new MambaADException($"{root}: folder is not empty and was not made by the demo generator; give an empty or new folder");
        Directory.CreateDirectory(root);
        File.Delete(Path.Combine(root, CompleteFile)); // from here on the dataset is incomplete until the marker is rewritten
        foreach (var name in ClassNames)
        {
            var dir = Path.Combine(root, name);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Writes to a temporary name in the same folder, then renames, so no file is ever half-written under its final name.</summary>
    private static void WriteFile(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".tmp");
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    private static SyntheticDatasetInfo Info(string root, IReadOnlyList<ClassPainter> painters, SyntheticDatasetOptions o, bool reused) =>
        new(root,
            painters.Select(p => p.Name).ToList(),
            painters.ToDictionary(p => p.Name, p => p.DefectTypes),
            o.ImageSize,
            painters.Count * o.TrainPerClass,
            painters.Count * o.TestGoodPerClass,
            painters.Sum(p => p.DefectTypes.Count) * o.TestDefectPerType,
            reused);
}
