using MambaAD.Checkpoints;
using MambaAD.Evaluation;

namespace MambaAD.Inference;

/// <summary>
/// Chooses decision thresholds from a test run's scores and pixel statistics. With anomalous images (by mask, or
/// folder when there is no mask): the image threshold that maximises F1 over all candidate cuts; the pixel threshold
/// likewise over the pixels of images with masks (pooled over classes). With normal images only: the
/// <see cref="NormalQuantile"/> quantile of the normal image scores (so about 1 − q of normal images are flagged),
/// and the same quantile of all normal pixels. An image is anomalous when its score is strictly above the threshold.
/// The pixel thresholds come from the run's pixel histograms (<see cref="Evaluator"/>): exact while they hold every
/// distinct value, else within their rounding.
/// </summary>
public static class Calibration
{
    /// <summary>The default quantile for normal-only calibration: a 1 % false-positive rate on normal images.</summary>
    public const double NormalQuantile = 0.99;

    /// <summary>Thresholds from a test run (<see cref="ModelTesting"/>), F1-max or a normal quantile as the class comment says.</summary>
    /// <exception cref="MambaADException">No images, only anomalous images, or a quantile outside (0, 1).</exception>
    public static Thresholds Choose(TestReport report, double normalQuantile = NormalQuantile)
    {
        var images = report.Images;
        if (images.Count == 0) throw new MambaADException("calibration needs scored images: the selected split is empty");
        if (normalQuantile is <= 0 or >= 1) throw new MambaADException($"the normal quantile {normalQuantile} must be between 0 and 1, e.g. 0.99", "NormalQuantile");
        var labels = images.Select(r => r.IsAnomalous ? 1 : 0).ToArray();
        int normals = labels.Count(l => l == 0);
        var pixels = PixelHistogram.Merge(report.Pixels.Select(p => p.Value)).Bins();
        if (labels.Contains(1) && normals > 0)
        {
            double image = Metrics.F1MaxThreshold(labels, images.Select(r => r.Score).ToArray());
            double? pixel = pixels.Any(b => b.Pos > 0) ? PixelF1MaxCut(pixels) : null;
            return new Thresholds(image, pixel, $"F1-max on {images.Count} images ({labels.Count(l => l == 1)} anomalous)");
        }
        if (normals == 0) throw new MambaADException("calibration needs normal images: every image of the split is anomalous");
        double imageQ = Quantile(images.Select(r => r.Score).Order().ToArray(), normalQuantile);
        double? pixelQ = pixels.Length == 0 ? null : PixelQuantile(pixels, normalQuantile);
        return new Thresholds(imageQ, pixelQ, $"{normalQuantile:0.###} quantile of {normals} normal images (no anomalous images)");
    }

    /// <summary>
    /// F1-max cut over the pooled pixels: sweeping the bins from the top, the cut below the bin with the best
    /// F1 = 2·TP/(TP + FP + P), halfway to the next lower bin (so "value &gt; cut" selects exactly the bins above it).
    /// </summary>
    private static double PixelF1MaxCut(PixelHistogram.Bin[] bins)
    {
        long positives = bins.Sum(b => b.Pos), tp = 0, fp = 0;
        double best = -1;
        int at = bins.Length - 1;
        for (int i = bins.Length - 1; i >= 0; i--)
        {
            tp += bins[i].Pos;
            fp += bins[i].Neg;
            double f1 = 2.0 * tp / (tp + fp + positives);
            if (f1 > best) { best = f1; at = i; }
        }
        return at > 0 ? ((double)bins[at].Value + bins[at - 1].Value) / 2 : bins[0].Value - 1e-9;
    }

    /// <summary>The q quantile of the pixels of normal images (all pixels: every image is normal), interpolated as numpy's default.</summary>
    private static double PixelQuantile(PixelHistogram.Bin[] bins, double q)
    {
        long total = bins.Sum(b => b.Neg + b.Pos);
        double pos = q * (total - 1);
        long i = (long)Math.Floor(pos);
        double lo = ValueAt(bins, i), hi = i + 1 < total ? ValueAt(bins, i + 1) : lo;
        return lo + (pos - i) * (hi - lo);
    }

    /// <summary>The value of the pixel of rank <paramref name="rank"/> (0-based, ascending).</summary>
    private static double ValueAt(PixelHistogram.Bin[] bins, long rank)
    {
        long seen = 0;
        foreach (var b in bins)
        {
            seen += b.Neg + b.Pos;
            if (rank < seen) return b.Value;
        }
        return bins[^1].Value;
    }

    private static double Quantile(double[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int i = (int)Math.Floor(pos);
        return i + 1 < sorted.Length ? sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
    }
}
