using System.Globalization;
using MambaAD.Data;
using MambaAD.Imaging;
using MambaAD.IO;

namespace MambaAD.Evaluation;

/// <summary>Options of <see cref="MapEvaluation.Run"/> (<c>mambaad eval</c>).</summary>
/// <param name="DataRoot">The dataset root (any layout of <see cref="Dataset.Layouts"/>).</param>
/// <param name="MapsDir">Folder of saved maps: <c>&lt;class&gt;/&lt;defect&gt;/&lt;stem&gt;.npy</c> (<c>good</c> for normal images), optional <c>scores.csv</c>.</param>
/// <param name="Dataset">Layout, class filter and --skip-bad.</param>
/// <param name="ImageSize">Evaluation size: masks are resized to it (PIL bilinear, &gt; 0.5) and maps of other sizes are resized to it (bilinear, align_corners).</param>
public sealed record MapEvaluationOptions(string DataRoot, string MapsDir, DatasetOptions? Dataset = null, int ImageSize = 256);

/// <summary>The result of scoring saved maps, with the warnings to show once.</summary>
/// <param name="Result">Per-class metrics, mean and mAD.</param>
/// <param name="Dataset">The dataset that was read.</param>
/// <param name="Warnings">Skipped files (with --skip-bad) and vanished masks, one line each.</param>
public sealed record MapEvaluationReport(EvaluationResult Result, Dataset Dataset, IReadOnlyList<string> Warnings);

/// <summary>
/// Scores any method's saved anomaly maps against a dataset's ground truth with the official metrics (spec §12.6,
/// §14). A map is a float32/float64 <c>.npy</c> (H×W, or with leading size-1 axes); the image score is the max of
/// the map at the evaluation size unless <c>scores.csv</c> (<c>class,defect,stem,score</c>) gives one. Pixel metrics
/// of a class are unavailable when none of its defect images has a mask; mAD then averages what exists.
/// </summary>
public static class MapEvaluation
{
    /// <summary>Reads the dataset and the maps, and computes the metrics.</summary>
    /// <exception cref="MambaADException">A missing or unreadable file, a mask whose size differs from its image, … (one line naming the file).</exception>
    public static MapEvaluationReport Run(MapEvaluationOptions options)
    {
        int size = options.ImageSize;
        if (size <= 0) throw new MambaADException($"the evaluation size {size} must be positive", nameof(MapEvaluationOptions.ImageSize));
        var dsOptions = options.Dataset ?? new DatasetOptions();
        var dataset = Dataset.Open(options.DataRoot, dsOptions);
        var mapsDir = Path.GetFullPath(options.MapsDir);
        if (!Directory.Exists(mapsDir)) throw new MambaADException($"{mapsDir}: maps folder not found (expected <class>/<defect>/<stem>.npy files)");
        var scores = ReadScores(Path.Combine(mapsDir, "scores.csv"));
        var problems = new Problems(dsOptions.SkipBad);
        var test = dataset.Test;
        var maps = new float[test.Count][];
        var masks = new byte[test.Count][];
        var ok = new bool[test.Count];
        var firstError = new string?[test.Count];
        Parallel.For(0, test.Count, i =>
        {
            try
            {
                var s = test[i];
                ImageDecoder.ReadSize(s.ImagePath); // a missing or corrupt image is named even when maps exist
                maps[i] = LoadMap(Path.Combine(mapsDir, s.ClassName, s.DefectType, s.Stem + ".npy"), size);
                masks[i] = LoadMask(s, size)!;
                ok[i] = true;
            }
            catch (MambaADException e) { firstError[i] = e.Message; }
        });
        // Report in dataset order, so the first error is deterministic.
        for (int i = 0; i < test.Count; i++) if (firstError[i] is { } msg) problems.Report(msg);
        var evaluator = new Evaluator(size, size);
        for (int i = 0; i < test.Count; i++)
        {
            if (!ok[i]) continue;
            var s = test[i];
            double? score = scores is null ? null
                : scores.TryGetValue((s.ClassName, s.DefectType, s.Stem), out var v) ? v
                : throw new MambaADException($"{Path.Combine(mapsDir, "scores.csv")}: no score for {s.ClassName},{s.DefectType},{s.Stem} (expected one row per test image)");
            evaluator.Add(s.ClassName, maps[i], masks[i], s.IsFolderAnomalous, score);
        }
        var result = evaluator.Evaluate();
        var warnings = dataset.Warnings.Concat(problems.List).ToList();
        foreach (var (cls, n) in result.VanishedMasks)
            warnings.Add($"class '{cls}': {n} defect image(s) whose mask vanishes at {size}×{size} count as normal (official rule, spec §12.6)");
        return new MapEvaluationReport(result, dataset, warnings);
    }

    private static float[] LoadMap(string path, int size)
    {
        if (!File.Exists(path)) throw new MambaADException($"{path}: anomaly map missing (expected a .npy map for every test image)");
        var a = NpyArray.Read(path);
        var dims = a.Shape.SkipWhile(d => d == 1).ToArray();
        if (dims.Length != 2 || a.DType[0] == 'U')
            throw new MambaADException($"{path}: map has shape ({string.Join(",", a.Shape)}) and dtype {a.DType}; expected a numeric H×W array");
        var values = a.ToDoubleArray();
        if (values.Any(double.IsNaN)) throw new MambaADException($"{path}: map contains NaN");
        return dims[0] == size && dims[1] == size ? values.Select(v => (float)v).ToArray()
            : MapResize.AlignCorners(values, dims[0], dims[1], size, size);
    }

    private static byte[]? LoadMask(Sample s, int size)
    {
        if (s.MaskPath is null) return null; // normal: zeros (Evaluator); defect without mask: image metrics only
        if (!File.Exists(s.MaskPath)) throw new MambaADException($"{s.MaskPath}: mask file missing (expected the mask of {s.ImagePath})");
        var (iw, ih) = ImageDecoder.ReadSize(s.ImagePath);
        return Preprocess.Mask(s.MaskPath, s.ImagePath, iw, ih, size);
    }

    private static Dictionary<(string, string, string), double>? ReadScores(string path)
    {
        if (!File.Exists(path)) return null;
        var d = new Dictionary<(string, string, string), double>();
        var lines = File.ReadAllLines(path);
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].Trim();
            if (line.Length == 0 || (n == 0 && line.StartsWith("class,", StringComparison.Ordinal))) continue;
            var f = line.Split(',');
            if (f.Length != 4 || !double.TryParse(f[3], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new MambaADException($"{path}: line {n + 1} is '{line}'; expected class,defect,stem,score");
            d[(f[0].Trim(), f[1].Trim(), f[2].Trim())] = v;
        }
        return d;
    }
}
