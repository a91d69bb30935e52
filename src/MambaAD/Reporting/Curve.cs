namespace MambaAD.Reporting;

/// <summary>
/// ROC and precision–recall points for drawing (not for the metrics: those come exactly from
/// <see cref="Evaluation.Metrics"/>). Image curves are exact, one point per distinct score as sklearn's
/// <c>roc_curve</c>/<c>precision_recall_curve</c>. Pixel curves pool a class's pixels into value bins first, because
/// a class has millions of pixels and a drawing needs a few hundred points.
/// </summary>
internal sealed record Curve(double[] Fpr, double[] Tpr, double[] Recall, double[] Precision)
{
    /// <summary>Bins of a pixel histogram (equal width between the class's min and max map value).</summary>
    public const int PixelBins = 2048;

    /// <summary>Curves of labelled scores; null when only one label is present.</summary>
    public static Curve? FromScores(IReadOnlyList<int> labels, IReadOnlyList<double> scores)
    {
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        var tps = new List<long>();
        var fps = new List<long>();
        long tp = 0, fp = 0;
        for (int k = 0; k < order.Length; k++)
        {
            if (labels[order[k]] != 0) tp++; else fp++;
            if (k == order.Length - 1 || scores[order[k + 1]] != scores[order[k]]) { tps.Add(tp); fps.Add(fp); }
        }
        return FromCounts(tps, fps);
    }

    /// <summary>Curves of all pixels of maps with known masks (the pixels the pixel metrics pool); null without both labels.</summary>
    public static Curve? FromPixels(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks)
    {
        if (maps.Count == 0) return null;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var m in maps) foreach (var v in m) { if (v < min) min = v; if (v > max) max = v; }
        var pos = new long[PixelBins];
        var neg = new long[PixelBins];
        double scale = max > min ? (PixelBins - 1) / ((double)max - min) : 0;
        for (int i = 0; i < maps.Count; i++)
        {
            var map = maps[i];
            var mask = masks[i];
            for (int j = 0; j < map.Length; j++)
            {
                int b = (int)((map[j] - min) * scale);
                if (mask[j] != 0) pos[b]++; else neg[b]++;
            }
        }
        // Sweep the threshold down from the top bin: each bin is one curve point.
        var tps = new List<long>();
        var fps = new List<long>();
        long tp = 0, fp = 0;
        for (int b = PixelBins - 1; b >= 0; b--)
        {
            if (pos[b] == 0 && neg[b] == 0) continue;
            tp += pos[b];
            fp += neg[b];
            tps.Add(tp);
            fps.Add(fp);
        }
        return FromCounts(tps, fps);
    }

    private static Curve? FromCounts(List<long> tps, List<long> fps)
    {
        if (tps.Count == 0) return null;
        double p = tps[^1], n = fps[^1];
        if (p == 0 || n == 0) return null;
        // ROC starts at (0, 0); PR starts at recall 0 with precision 1, as sklearn appends.
        var fpr = new List<double> { 0 };
        var tpr = new List<double> { 0 };
        var recall = new List<double> { 0 };
        var precision = new List<double> { 1 };
        for (int k = 0; k < tps.Count; k++)
        {
            fpr.Add(fps[k] / n);
            tpr.Add(tps[k] / p);
            if (tps[k] + fps[k] > 0)
            {
                recall.Add(tps[k] / p);
                precision.Add((double)tps[k] / (tps[k] + fps[k]));
            }
        }
        return new Curve(fpr.ToArray(), tpr.ToArray(), recall.ToArray(), precision.ToArray());
    }
}
