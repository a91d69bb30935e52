namespace MambaAD.Evaluation;

/// <summary>
/// The seven official metrics (spec §14; ADer <c>Evaluator</c> at MambaAD's release, sklearn path), as fractions.
/// Image level: I-AUROC, I-AP, I-F1max on (max of mask, max of map) per image. Pixel level, pooled over a class:
/// P-AUROC, P-AP, P-F1max (21 fixed thresholds on the min–max normalised maps) and AU-PRO (100 thresholds,
/// 8-connected regions, FPR &lt; 0.3 then min–max rescaled, trapezoid). A metric that is undefined for the input
/// (one label only, constant maps) is <see cref="double.NaN"/>.
/// </summary>
/// <remarks>
/// Ties follow sklearn's <c>_binary_clf_curve</c>: one curve point per distinct score, scores compared exactly.
/// Pixel metrics never sort doubles: maps are float32 (their float64 upcast is exact), whose bit patterns are turned
/// into order-preserving 32-bit keys and radix-sorted. AU-PRO labels each mask once and, per pixel, counts the
/// thresholds below its value; per-region histograms of that count give every PRO(θ) without re-binarising.
/// </remarks>
internal static class Metrics
{
    // ---------------------------------------------------------------- image level (sklearn on small arrays)

    /// <summary>sklearn <c>roc_auc_score</c>: trapezoid under (FPR, TPR) over distinct thresholds.</summary>
    public static double Auroc(ReadOnlySpan<int> labels, ReadOnlySpan<double> scores) => Curve(labels, scores).Auroc;

    /// <summary>sklearn <c>average_precision_score</c>: Σ (Rₙ − Rₙ₋₁)·Pₙ, step-wise, no interpolation.</summary>
    public static double AveragePrecision(ReadOnlySpan<int> labels, ReadOnlySpan<double> scores) => Curve(labels, scores).AP;

    /// <summary>ADer F1max: max over sklearn <c>precision_recall_curve</c> points of 2PR/(P+R), NaN points dropped.</summary>
    public static double F1Max(ReadOnlySpan<int> labels, ReadOnlySpan<double> scores) => Curve(labels, scores).F1Max;

    /// <summary>
    /// The decision threshold t at the F1max point of the same curve, for "anomalous when score &gt; t": halfway
    /// between the point's score and the next lower distinct score (1e-9 below the lowest score when the point is the
    /// last). Ties move together; among equal F1 the higher threshold wins. Without both labels: the highest score.
    /// </summary>
    public static double F1MaxThreshold(ReadOnlySpan<int> labels, ReadOnlySpan<double> scores)
    {
        if (scores.Length == 0) throw new ArgumentException("no scores");
        var acc = Curve(labels, scores, out var distinct);
        if (acc.BestPoint < 0 || acc.Negatives == 0) return distinct[0];
        int k = acc.BestPoint;
        return k + 1 < distinct.Count ? (distinct[k] + distinct[k + 1]) / 2 : distinct[k] - 1e-9;
    }

    private static CurveAccumulator Curve(ReadOnlySpan<int> labels, ReadOnlySpan<double> scores) => Curve(labels, scores, out _);

    /// <summary>The curve of labelled scores, and its distinct scores from the highest (one per curve point).</summary>
    private static CurveAccumulator Curve(ReadOnlySpan<int> labels, ReadOnlySpan<double> scores, out List<double> distinct)
    {
        if (labels.Length != scores.Length) throw new ArgumentException($"{labels.Length} labels but {scores.Length} scores");
        var order = Enumerable.Range(0, scores.Length).ToArray();
        var s = scores.ToArray();
        foreach (var v in s) if (double.IsNaN(v)) throw new ArgumentException("scores contain NaN");
        Array.Sort(order, (a, b) => s[b].CompareTo(s[a]));
        long positives = 0;
        foreach (var l in labels) positives += l != 0 ? 1 : 0;
        var acc = new CurveAccumulator(positives, labels.Length - positives);
        long tps = 0, fps = 0;
        distinct = [];
        for (int i = 0; i < order.Length; i++)
        {
            if (labels[order[i]] != 0) tps++; else fps++;
            if (i == order.Length - 1 || s[order[i + 1]] != s[order[i]])
            {
                acc.Add(tps, fps);
                distinct.Add(s[order[i]]);
            }
        }
        return acc;
    }

    /// <summary>
    /// Streams the (tps, fps) points of a binary classification curve in order of decreasing threshold and
    /// accumulates AUROC, AP and F1max the way sklearn/ADer compute them from the same points.
    /// </summary>
    private sealed class CurveAccumulator(long positives, long negatives)
    {
        private long _tps, _fps, _points;
        private long _area2; // 2·T·F·AUROC, exact in integers (≤ 2·T·F < 2⁵³ for any class we can hold)
        private double _ap, _f1 = double.NaN;

        public void Add(long tps, long fps)
        {
            _area2 += (fps - _fps) * (tps + _tps);
            if (positives > 0)
            {
                double precision = (double)tps / (tps + fps);
                _ap += ((double)tps / positives - (double)_tps / positives) * precision;
                double recall = (double)tps / positives;
                double f1 = 2 * precision * recall / (precision + recall);
                if (double.IsFinite(f1) && !(f1 <= _f1))
                {
                    _f1 = f1;
                    BestPoint = (int)_points;
                }
            }
            _tps = tps;
            _fps = fps;
            _points++;
        }

        /// <summary>The index (in the order added) of the point with the highest F1 so far; −1 before any.</summary>
        public int BestPoint { get; private set; } = -1;

        public long Negatives => negatives;

        public double Auroc => positives == 0 || negatives == 0 ? double.NaN : _area2 / (2.0 * positives * negatives);
        public double AP => positives == 0 ? double.NaN : _ap;
        // sklearn appends the point (P = 1, R = 0), whose F1 is 0.
        public double F1Max => positives == 0 ? double.NaN : double.IsNaN(_f1) ? 0 : Math.Max(_f1, 0);
    }

    // ---------------------------------------------------------------- pixel level

    /// <summary>
    /// P-AUROC and P-AP over every pixel of the given maps (flattened): the same curve as the image-level metrics,
    /// built from radix-sorted float32 keys.
    /// </summary>
    public static (double Auroc, double AP) PixelCurve(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks)
    {
        CheckPairs(maps, masks);
        long pos = 0, total = 0;
        for (int i = 0; i < maps.Count; i++)
        {
            total += maps[i].Length;
            foreach (var m in masks[i]) pos += m != 0 ? 1 : 0;
        }
        var posKeys = new uint[pos];
        var negKeys = new uint[total - pos];
        int p = 0, n = 0;
        for (int i = 0; i < maps.Count; i++)
        {
            var map = maps[i];
            var mask = masks[i];
            for (int j = 0; j < map.Length; j++)
            {
                uint k = SortKey(map[j]);
                if (mask[j] != 0) posKeys[p++] = k; else negKeys[n++] = k;
            }
        }
        posKeys = RadixSort(posKeys);
        negKeys = RadixSort(negKeys);
        // Walk both sorted arrays from the top: one curve point per distinct key (= distinct float value). The same
        // sums as CurveAccumulator, specialised: a point adds to AP only when tps grows, so most points cost no division.
        int a = posKeys.Length - 1, b = negKeys.Length - 1;
        long tps = 0, fps = 0, area2 = 0;
        double ap = 0;
        while (a >= 0 || b >= 0)
        {
            uint key = a < 0 ? negKeys[b] : b < 0 ? posKeys[a] : Math.Max(posKeys[a], negKeys[b]);
            long dt = 0, df = 0;
            while (a >= 0 && posKeys[a] == key) { dt++; a--; }
            while (b >= 0 && negKeys[b] == key) { df++; b--; }
            area2 += df * (2 * tps + dt);
            tps += dt;
            fps += df;
            if (dt > 0) ap += dt * ((double)tps / (tps + fps));
        }
        long neg = total - pos;
        return (pos == 0 || neg == 0 ? double.NaN : area2 / (2.0 * pos * neg), pos == 0 ? double.NaN : ap / pos);
    }

    /// <summary>
    /// ADer P-F1max: min–max normalise all maps of the class together; for τ ∈ {0, 0.05, …, 1} with pred = norm &gt; τ,
    /// F1 = 2PR/(P + R + 1e-8) with P = TP/(#pred + 1e-8), R = TP/(#gt + 1e-8), pooled; the max over the 21 values.
    /// </summary>
    public static double PixelF1Max(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks) =>
        PixelF1PerThreshold(maps, masks).Max();

    /// <summary>The 21 F1 values of <see cref="PixelF1Max"/>, for τ = i·0.05 (as numpy's arange/linspace give them).</summary>
    public static double[] PixelF1PerThreshold(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks)
    {
        CheckPairs(maps, masks);
        var (min, max) = MinMax(maps);
        var thresholds = new double[21];
        for (int i = 0; i < 21; i++) thresholds[i] = i * 0.05;
        var predHist = new long[22];
        var tpHist = new long[22];
        long gt = 0;
        double range = max - min;
        for (int i = 0; i < maps.Count; i++)
        {
            var map = maps[i];
            var mask = masks[i];
            for (int j = 0; j < map.Length; j++)
            {
                double norm = ((double)map[j] - min) / range;
                int c = CountBelow(norm, thresholds, norm / 0.05);
                predHist[c]++;
                if (mask[j] != 0) { tpHist[c]++; gt++; }
            }
        }
        var f1 = new double[21];
        long pred = 0, tp = 0;
        for (int t = 20; t >= 0; t--)
        {
            // norm > τ_t ⇔ count-below > t
            pred += predHist[t + 1];
            tp += tpHist[t + 1];
            double precision = tp / (pred + 1e-8), recall = tp / (gt + 1e-8);
            f1[t] = 2 * precision * recall / (precision + recall + 1e-8);
        }
        return f1;
    }

    /// <summary>
    /// ADer AU-PRO. θ runs over numpy <c>arange(min, max, (max − min)/steps)</c>; per θ, PRO is the mean over all
    /// 8-connected GT regions of all images of (pixels &gt; θ in the region)/area, and FPR is the pooled fraction of
    /// GT-negative pixels &gt; θ. Points with FPR &lt; <paramref name="fprLimit"/> are kept, their FPRs min–max
    /// rescaled to [0, 1], and PRO integrated over them by the trapezoid rule (sklearn <c>auc</c>).
    /// </summary>
    public static double AuPro(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks, int height, int width,
        int steps = 100, double fprLimit = 0.3) => AuProCurve(maps, masks, height, width, steps, fprLimit).AuPro;

    /// <summary>AU-PRO with its full curve (for tests against the golden details).</summary>
    public static (double AuPro, double[] Pro, double[] Fpr, int Kept) AuProCurve(IReadOnlyList<float[]> maps,
        IReadOnlyList<byte[]> masks, int height, int width, int steps = 100, double fprLimit = 0.3)
    {
        CheckPairs(maps, masks);
        var (min, max) = MinMax(maps);
        var thresholds = NumpyArange(min, max, (max - min) / steps);
        int nt = thresholds.Length;
        if (nt == 0) return (double.NaN, [], [], 0);
        double d = nt > 1 ? thresholds[1] - thresholds[0] : 1;
        // hist[r][c]: pixels of region r whose value exceeds exactly c thresholds (c ∈ 0..nt).
        var regionHist = new List<long[]>();
        var regionArea = new List<long>();
        var negHist = new long[nt + 1];
        long negatives = 0;
        for (int i = 0; i < maps.Count; i++)
        {
            var map = maps[i];
            var mask = masks[i];
            if (map.Length != height * width) throw new ArgumentException($"map {i} has {map.Length} values, expected {height}×{width}");
            var labels = ConnectedComponents.Label(mask, height, width, out int count);
            int first = regionHist.Count;
            for (int r = 0; r < count; r++) { regionHist.Add(new long[nt + 1]); regionArea.Add(0); }
            for (int j = 0; j < map.Length; j++)
            {
                double v = map[j];
                int c = CountBelow(v, thresholds, (v - min) / d);
                if (labels[j] == 0) { negHist[c]++; negatives++; }
                else { int r = first + labels[j] - 1; regionHist[r][c]++; regionArea[r]++; }
            }
        }
        int regions = regionHist.Count;
        var pro = new double[nt];
        var fpr = new double[nt];
        // Suffix sums: exceeding threshold t ⇔ count-below > t.
        var above = new long[regions];
        long fp = 0;
        for (int t = nt - 1; t >= 0; t--)
        {
            fp += negHist[t + 1];
            fpr[t] = (double)fp / negatives;
            double sum = 0;
            for (int r = 0; r < regions; r++)
            {
                above[r] += regionHist[r][t + 1];
                sum += (double)above[r] / regionArea[r];
            }
            pro[t] = regions == 0 ? double.NaN : sum / regions;
        }
        var keptFpr = new List<double>();
        var keptPro = new List<double>();
        for (int t = 0; t < nt; t++)
            if (fpr[t] < fprLimit) { keptFpr.Add(fpr[t]); keptPro.Add(pro[t]); }
        if (keptFpr.Count < 2 || regions == 0) return (double.NaN, pro, fpr, keptFpr.Count);
        double fmin = keptFpr.Min(), fmax = keptFpr.Max();
        var x = keptFpr.Select(f => (f - fmin) / (fmax - fmin)).ToArray();
        // sklearn auc: direction −1 when x is non-increasing, then numpy trapz.
        bool decreasing = true, increasing = true;
        for (int k = 1; k < x.Length; k++) { if (x[k] > x[k - 1]) decreasing = false; if (x[k] < x[k - 1]) increasing = false; }
        if (!decreasing && !increasing) throw new InvalidOperationException("FPR curve is not monotonic");
        double area = 0;
        for (int k = 1; k < x.Length; k++) area += (x[k] - x[k - 1]) * (keptPro[k] + keptPro[k - 1]) / 2;
        return (increasing && !decreasing ? area : -area, pro, fpr, keptFpr.Count);
    }

    /// <summary>
    /// numpy <c>arange(start, stop, step)</c> for floats: length ceil((stop − start)/step); element i is
    /// start + i·δ with δ = (start + step) − start, as numpy's fill computes it.
    /// </summary>
    internal static double[] NumpyArange(double start, double stop, double step)
    {
        if (!(step > 0)) return [];
        double len = Math.Ceiling((stop - start) / step);
        if (!(len > 0)) return [];
        var r = new double[(int)len];
        double delta = (start + step) - start;
        for (int i = 0; i < r.Length; i++) r[i] = i == 0 ? start : i == 1 ? start + step : start + i * delta;
        return r;
    }

    /// <summary>The number of thresholds t (ascending) with v &gt; t, starting from an estimate of the index.</summary>
    private static int CountBelow(double v, double[] thresholds, double estimate)
    {
        int n = thresholds.Length;
        int c = double.IsNaN(estimate) ? 0 : (int)Math.Clamp(Math.Floor(estimate) + 1, 0, n);
        while (c > 0 && !(v > thresholds[c - 1])) c--;
        while (c < n && v > thresholds[c]) c++;
        return c;
    }

    private static (double Min, double Max) MinMax(IReadOnlyList<float[]> maps)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var m in maps)
            foreach (var v in m)
            {
                if (float.IsNaN(v)) throw new ArgumentException("anomaly maps contain NaN");
                if (v < min) min = v;
                if (v > max) max = v;
            }
        return (min, max);
    }

    private static void CheckPairs(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks)
    {
        if (maps.Count != masks.Count) throw new ArgumentException($"{maps.Count} maps but {masks.Count} masks");
        for (int i = 0; i < maps.Count; i++)
            if (maps[i].Length != masks[i].Length)
                throw new ArgumentException($"map {i} has {maps[i].Length} values but its mask {masks[i].Length}");
    }

    /// <summary>An unsigned key with the same order as the float (−0 and +0 map to one key).</summary>
    private static uint SortKey(float f)
    {
        if (float.IsNaN(f)) throw new ArgumentException("anomaly maps contain NaN");
        if (f == 0) f = 0;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
    }

    /// <summary>LSD radix sort of 32-bit keys, 3 passes of 11 bits (histograms from one read); returns the sorted array (input or a new one).</summary>
    private static uint[] RadixSort(uint[] keys)
    {
        var tmp = new uint[keys.Length];
        var count = new int[3 * 2048];
        foreach (var k in keys)
        {
            count[k & 2047]++;
            count[2048 + ((k >> 11) & 2047)]++;
            count[4096 + (k >> 22)]++;
        }
        uint[] src = keys, dst = tmp;
        for (int pass = 0; pass < 3; pass++)
        {
            var c = count.AsSpan(pass * 2048, 2048);
            int sum = 0;
            for (int i = 0; i < c.Length; i++) { int v = c[i]; c[i] = sum; sum += v; }
            int shift = 11 * pass;
            foreach (var k in src) dst[c[(int)((k >> shift) & 2047)]++] = k;
            (src, dst) = (dst, src);
        }
        return src;
    }
}
