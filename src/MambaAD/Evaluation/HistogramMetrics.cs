namespace MambaAD.Evaluation;

/// <summary>
/// The four pixel metrics of <see cref="Metrics"/> computed from a <see cref="PixelHistogram"/> instead of the maps:
/// the same sums over the same curve points, one point per bin. With one bin per distinct value (Shift 0) the result
/// is the exact reference's; with coarser bins it is the exact metric of the maps rounded down to the bins
/// (<see cref="PixelHistogram"/>). <see cref="AurocBound"/> bounds what that rounding can change in P-AUROC.
/// </summary>
internal static class HistogramMetrics
{
    /// <summary>P-AUROC and P-AP: <see cref="Metrics.PixelCurve"/> walking the bins from the top.</summary>
    public static (double Auroc, double AP) Curve(PixelHistogram.Bin[] bins)
    {
        long tps = 0, fps = 0, area2 = 0;
        double ap = 0;
        for (int i = bins.Length - 1; i >= 0; i--)
        {
            long dt = bins[i].Pos, df = bins[i].Neg;
            area2 += df * (2 * tps + dt);
            tps += dt;
            fps += df;
            if (dt > 0) ap += dt * ((double)tps / (tps + fps));
        }
        return (tps == 0 || fps == 0 ? double.NaN : area2 / (2.0 * tps * fps), tps == 0 ? double.NaN : ap / tps);
    }

    /// <summary>
    /// The most that rounding into bins can have moved P-AUROC: a positive and a negative pixel in one bin count as a
    /// tie (½) where the maps may order them, so |Δ| ≤ Σ_bins pos·neg / (2·P·N). Zero with one bin per value.
    /// </summary>
    public static double AurocBound(PixelHistogram.Bin[] bins, int shift)
    {
        if (shift == 0) return 0;
        double ties = 0;
        long p = 0, n = 0;
        foreach (var b in bins) { ties += (double)b.Pos * b.Neg; p += b.Pos; n += b.Neg; }
        return p == 0 || n == 0 ? 0 : ties / (2.0 * p * n);
    }

    /// <summary>The 21 F1 values of P-F1max (<see cref="Metrics.PixelF1PerThreshold"/>) over the bins.</summary>
    public static double[] F1PerThreshold(PixelHistogram.Bin[] bins)
    {
        if (bins.Length == 0) throw new ArgumentException("no pixels");
        double min = bins[0].Value, max = bins[^1].Value, range = max - min;
        var thresholds = Metrics.F1Thresholds();
        var predHist = new long[22];
        var tpHist = new long[22];
        long gt = 0;
        foreach (var b in bins)
        {
            double norm = ((double)b.Value - min) / range;
            int c = Metrics.CountBelow(norm, thresholds, norm / 0.05);
            predHist[c] += b.Neg + b.Pos;
            tpHist[c] += b.Pos;
            gt += b.Pos;
        }
        return Metrics.F1FromCounts(predHist, tpHist, gt);
    }

    /// <summary>
    /// AU-PRO (<see cref="Metrics.AuProCurve"/>) over the bins: PRO(θ) is the mean over regions of the share of the
    /// region above θ, i.e. the sum over positive pixels above θ of 1/(their region's area), divided by the number of
    /// regions — which the bins' weights carry.
    /// </summary>
    public static (double AuPro, double[] Pro, double[] Fpr, int Kept) AuProCurve(PixelHistogram.Bin[] bins, long regions,
        int steps = 100, double fprLimit = 0.3)
    {
        if (bins.Length == 0) return (double.NaN, [], [], 0);
        double min = bins[0].Value, max = bins[^1].Value;
        var thresholds = Metrics.NumpyArange(min, max, (max - min) / steps);
        int nt = thresholds.Length;
        if (nt == 0) return (double.NaN, [], [], 0);
        double d = nt > 1 ? thresholds[1] - thresholds[0] : 1;
        var negHist = new long[nt + 1];
        var weightHist = new double[nt + 1];
        long negatives = 0;
        foreach (var b in bins)
        {
            double v = b.Value;
            int c = Metrics.CountBelow(v, thresholds, (v - min) / d);
            negHist[c] += b.Neg;
            weightHist[c] += b.Weight;
            negatives += b.Neg;
        }
        var pro = new double[nt];
        var fpr = new double[nt];
        long fp = 0;
        double above = 0;
        for (int t = nt - 1; t >= 0; t--)
        {
            fp += negHist[t + 1];
            above += weightHist[t + 1];
            fpr[t] = (double)fp / negatives;
            pro[t] = regions == 0 ? double.NaN : above / regions;
        }
        var (aupro, kept) = Metrics.IntegratePro(pro, fpr, regions, fprLimit);
        return (aupro, pro, fpr, kept);
    }
}
