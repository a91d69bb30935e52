namespace MambaAD.Evaluation;

/// <summary>
/// Computes the seven official metrics per class, their mean and mAD (spec §12.6, §14) from test images added one at
/// a time, in memory that does not grow with the number of images beyond one small record each (score and label):
/// the pixels are counted into a fixed-size histogram per class as they come, and no map is kept. Usable from
/// training/test code: call <see cref="Add"/> per test image (maps at the evaluation size, e.g. the smoothed 256²
/// maps), then <see cref="Evaluate"/>.
/// </summary>
/// <remarks>
/// <para>The image label is max(mask) — an anomalous image whose mask vanished after resizing counts as normal, and is
/// counted in <see cref="EvaluationResult.VanishedMasks"/>. A defect image without any mask keeps its folder label
/// for the image metrics and is left out of the pixel metrics; a class none of whose defect images has a mask has
/// no pixel metrics (null), and its mAD is the mean of what exists. The image score is the map's max unless one is
/// given.</para>
/// <para>Image metrics are exact. Pixel metrics are exact while a class's distinct map values fit its histogram
/// (16 MiB by default: about 440,000 values, some twenty smooth 256² maps or a hundred 64² ones); beyond
/// that values are rounded down to fewer significant bits until they fit, and the pixel metrics are the exact ones
/// of the rounded maps (<see cref="EvaluationResult.PixelRounding"/> says by how much, per class; bounded by the
/// span of the values whatever their number: 7.6e-6 for 2,000 generated 256² maps, which moved no metric by more
/// than 1e-6 — README, "Evaluation in bounded memory").</para>
/// <para>Not thread-safe: add from one thread.</para>
/// </remarks>
public sealed class Evaluator
{
    private readonly int _height, _width;
    private readonly long _pixelMemory;
    private readonly List<string> _order = [];
    private readonly Dictionary<string, ClassState> _classes = [];

    private sealed class ClassState(long pixelMemory)
    {
        public readonly List<int> Labels = [];
        public readonly List<double> Scores = [];
        public readonly PixelHistogram Pixels = new(pixelMemory);
        public long Regions;
        public int Vanished;
        public bool HasDefectMask;
    }

    /// <summary>An evaluator for maps and masks of <paramref name="height"/>×<paramref name="width"/> pixels.</summary>
    public Evaluator(int height, int width) : this(height, width, PixelHistogram.DefaultMemoryCap) { }

    /// <summary>
    /// An evaluator whose per-class pixel histograms take at most <paramref name="pixelMemoryPerClass"/> bytes
    /// (28 per distinct value): more keeps larger classes exact.
    /// </summary>
    public Evaluator(int height, int width, long pixelMemoryPerClass)
    {
        if (height <= 0 || width <= 0) throw new ArgumentException($"size must be positive, got {width}×{height}");
        if (pixelMemoryPerClass < 1024 * 28) throw new ArgumentOutOfRangeException(nameof(pixelMemoryPerClass), pixelMemoryPerClass, "at least 28 KiB (1024 values)");
        _height = height;
        _width = width;
        _pixelMemory = pixelMemoryPerClass;
    }

    /// <summary>Adds one test image.</summary>
    /// <param name="className">The image's class; classes are reported in the order first seen.</param>
    /// <param name="map">The anomaly map, H·W floats, row-major (read during the call, not kept).</param>
    /// <param name="mask">The binarised mask in {0,1} (H·W), or null: all-zero for a normal image, unknown for a defect image.</param>
    /// <param name="isFolderAnomalous">Whether the dataset calls the image anomalous (its folder / record).</param>
    /// <param name="score">The image score; the map's max when null.</param>
    public void Add(string className, float[] map, byte[]? mask, bool isFolderAnomalous, double? score = null)
    {
        int n = _height * _width;
        if (map.Length != n) throw new ArgumentException($"map has {map.Length} values, expected {_width}×{_height}");
        if (mask is not null && mask.Length != n) throw new ArgumentException($"mask has {mask.Length} values, expected {_width}×{_height}");
        double max = Max(map); // also refuses NaN before anything is counted
        if (!_classes.TryGetValue(className, out var c))
        {
            _classes[className] = c = new ClassState(_pixelMemory);
            _order.Add(className);
        }
        if (mask is null && !isFolderAnomalous) mask = new byte[n];
        bool anomalous = mask is null || mask.AsSpan().IndexOfAnyExcept((byte)0) >= 0;
        c.Labels.Add(anomalous ? 1 : 0);
        c.Scores.Add(score ?? max);
        if (mask is null) return; // a defect image without a mask: image metrics only
        if (isFolderAnomalous)
        {
            c.HasDefectMask = true;
            if (!anomalous) c.Vanished++;
        }
        // AU-PRO's regions: each positive pixel carries 1/(its region's area), so the histogram sums to PRO·regions.
        int[] regions = [];
        double[] weights = [0];
        if (anomalous)
        {
            regions = ConnectedComponents.Label(mask, _height, _width, out int count);
            var area = new long[count + 1];
            foreach (var r in regions) area[r]++;
            weights = new double[count + 1];
            for (int r = 1; r <= count; r++) weights[r] = 1.0 / area[r];
            c.Regions += count;
        }
        c.Pixels.Add(map, mask, regions, weights);
    }

    /// <summary>Computes the metrics of every class added so far.</summary>
    public EvaluationResult Evaluate()
    {
        var results = new List<KeyValuePair<string, ClassMetrics>>();
        var vanished = new Dictionary<string, int>();
        var rounding = new Dictionary<string, double>();
        foreach (var name in _order)
        {
            var c = _classes[name];
            if (c.Vanished > 0) vanished[name] = c.Vanished;
            var values = MetricTable.Image([.. c.Labels], [.. c.Scores]);
            c.Pixels.Compact();
            if (c.HasDefectMask)
            {
                foreach (var (metric, value) in MetricTable.Pixel(c.Pixels, c.Regions)) values[metric] = value;
                rounding[name] = c.Pixels.Rounding;
            }
            results.Add(new(name, ClassMetrics.Finite(values)));
        }
        return new EvaluationResult(results, vanished, rounding);
    }

    /// <summary>Per class in order, the histogram of the pixels of its images with masks (normal images included).</summary>
    internal IReadOnlyList<KeyValuePair<string, PixelHistogram>> Pixels =>
        [.. _order.Select(n => new KeyValuePair<string, PixelHistogram>(n, _classes[n].Pixels))];

    private static double Max(float[] map)
    {
        float max = float.NegativeInfinity;
        foreach (var v in map)
        {
            if (float.IsNaN(v)) throw new ArgumentException("anomaly maps contain NaN");
            if (v > max) max = v;
        }
        return max;
    }
}
