namespace MambaAD.Evaluation;

/// <summary>
/// Collects anomaly maps and ground-truth masks per class, then computes the seven official metrics per class, their
/// mean and mAD (spec §12.6, §14). Usable from training/test code: call <see cref="Add"/> per test image (maps at
/// the evaluation size, e.g. the smoothed 256² maps), then <see cref="Evaluate"/>.
/// </summary>
/// <remarks>
/// The image label is max(mask) — an anomalous image whose mask vanished after resizing counts as normal, and is
/// counted in <see cref="EvaluationResult.VanishedMasks"/>. A defect image without any mask keeps its folder label
/// for the image metrics and is left out of the pixel metrics; a class none of whose defect images has a mask has
/// no pixel metrics (null), and its mAD is the mean of what exists. The image score is the map's max unless one is
/// given.
/// </remarks>
public sealed class Evaluator
{
    private readonly int _height, _width;
    private readonly List<string> _order = [];
    private readonly Dictionary<string, List<Entry>> _classes = [];

    private sealed record Entry(float[] Map, byte[]? Mask, bool FolderAnomalous, double Score);

    /// <summary>An evaluator for maps and masks of <paramref name="height"/>×<paramref name="width"/> pixels.</summary>
    public Evaluator(int height, int width)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"size must be positive, got {width}×{height}");
        _height = height;
        _width = width;
    }

    /// <summary>Adds one test image.</summary>
    /// <param name="className">The image's class; classes are reported in the order first seen.</param>
    /// <param name="map">The anomaly map, H·W floats, row-major (kept by reference: do not reuse the array).</param>
    /// <param name="mask">The binarised mask in {0,1} (H·W), or null: all-zero for a normal image, unknown for a defect image.</param>
    /// <param name="isFolderAnomalous">Whether the dataset calls the image anomalous (its folder / record).</param>
    /// <param name="score">The image score; the map's max when null.</param>
    public void Add(string className, float[] map, byte[]? mask, bool isFolderAnomalous, double? score = null)
    {
        int n = _height * _width;
        if (map.Length != n) throw new ArgumentException($"map has {map.Length} values, expected {_width}×{_height}");
        if (mask is not null && mask.Length != n) throw new ArgumentException($"mask has {mask.Length} values, expected {_width}×{_height}");
        if (mask is null && !isFolderAnomalous) mask = new byte[n];
        if (!_classes.TryGetValue(className, out var list))
        {
            _classes[className] = list = [];
            _order.Add(className);
        }
        list.Add(new Entry(map, mask, isFolderAnomalous, score ?? map.Max()));
    }

    /// <summary>Computes the metrics of every class added so far.</summary>
    public EvaluationResult Evaluate()
    {
        var results = new List<KeyValuePair<string, ClassMetrics>>();
        var vanished = new Dictionary<string, int>();
        foreach (var name in _order)
        {
            var entries = _classes[name];
            var labels = entries.Select(e => e.Mask is null ? 1 : e.Mask.Any(v => v != 0) ? 1 : 0).ToArray();
            var scores = entries.Select(e => e.Score).ToArray();
            int lost = entries.Count(e => e.FolderAnomalous && e.Mask is not null && !e.Mask.Any(v => v != 0));
            if (lost > 0) vanished[name] = lost;
            var values = MetricTable.Image(labels, scores);
            if (entries.Any(e => e.FolderAnomalous && e.Mask is not null))
            {
                var withGt = entries.Where(e => e.Mask is not null).ToList();
                foreach (var (metric, value) in MetricTable.Pixel(withGt.Select(e => e.Map).ToList(), withGt.Select(e => e.Mask!).ToList(), _height, _width))
                    values[metric] = value;
            }
            results.Add(new(name, ClassMetrics.Finite(values)));
        }
        return new EvaluationResult(results, vanished);
    }
}
