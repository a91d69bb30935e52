using MambaAD.Checkpoints;
using MambaAD.Evaluation;


namespace MambaAD.Inference;

/// <summary>
/// Chooses decision thresholds from scored images. With anomalous images (by mask, or folder when there is no
/// mask): the image threshold that maximises F1 over all candidate cuts; the pixel threshold likewise over the pixels
/// of images with masks. With normal images only: the <see cref="NormalQuantile"/> quantile of the normal image
/// scores (so about 1 − q of normal images are flagged), and the same quantile of all normal pixels.
/// An image is anomalous when its score is strictly above the threshold.
/// </summary>
public static class Calibration
{
    /// <summary>The default quantile for normal-only calibration: a 1 % false-positive rate on normal images.</summary>
    public const double NormalQuantile = 0.99;

    /// <summary>Thresholds from scored images (a test report's), F1-max or a normal quantile as the class comment says.</summary>
    /// <exception cref="MambaADException">No images, only anomalous images, or a quantile outside (0, 1).</exception>
    public static Thresholds Choose(IReadOnlyList<ImageResult> images, double normalQuantile = NormalQuantile)
    {
        if (images.Count == 0) throw new MambaADException("calibration needs scored images: the selected split is empty");
        if (normalQuantile is <= 0 or >= 1) throw new MambaADException($"the normal quantile {normalQuantile} must be between 0 and 1, e.g. 0.99", "NormalQuantile");
        var labels = images.Select(r => r.Mask is null ? (r.Sample.IsFolderAnomalous ? 1 : 0) : (Array.IndexOf(r.Mask, (byte)1) >= 0 ? 1 : 0)).ToArray();
        var normals = images.Where((_, i) => labels[i] == 0).ToList();
        if (labels.Contains(1) && normals.Count > 0)
        {
            double image = Metrics.F1MaxThreshold(labels, images.Select(r => r.Score).ToArray());
            var withMask = images.Where(r => r.Mask is not null).ToList();
            double? pixel = withMask.Any(r => Array.IndexOf(r.Mask!, (byte)1) >= 0) ? PixelF1MaxCut(withMask) : null;
            return new Thresholds(image, pixel, $"F1-max on {images.Count} images ({labels.Count(l => l == 1)} anomalous)");
        }
        if (normals.Count == 0) throw new MambaADException("calibration needs normal images: every image of the split is anomalous");
        double imageQ = Quantile(normals.Select(r => r.Score).ToArray(), normalQuantile);
        double pixelQ = Quantile(normals.SelectMany(r => r.Map).Select(v => (double)v).ToArray(), normalQuantile);
        return new Thresholds(imageQ, pixelQ, $"{normalQuantile:0.###} quantile of {normals.Count} normal images (no anomalous images)");
    }

    /// <summary>F1-max cut over pixels, on a 4096-bin histogram between the pixel min and max.</summary>
    private static double PixelF1MaxCut(IReadOnlyList<ImageResult> images)
    {
        const int bins = 4096;
        double lo = images.Min(r => r.Map.Min()), hi = images.Max(r => r.Map.Max());
        double width = Math.Max(hi - lo, 1e-12) / bins;
        var pos = new long[bins];
        var neg = new long[bins];
        foreach (var r in images)
            for (int i = 0; i < r.Map.Length; i++)
            {
                int b = Math.Min(bins - 1, (int)((r.Map[i] - lo) / width));
                if (r.Mask![i] == 1) pos[b]++; else neg[b]++;
            }
        long positives = pos.Sum(), tp = 0, fp = 0;
        double best = -1, cut = hi;
        for (int b = bins - 1; b >= 0; b--)
        {
            tp += pos[b];
            fp += neg[b];
            double f1 = 2.0 * tp / (tp + fp + positives);
            if (f1 > best) { best = f1; cut = lo + b * width; }
        }
        return cut;
    }

    private static double Quantile(double[] values, double q)
    {
        Array.Sort(values);
        double pos = q * (values.Length - 1);
        int i = (int)Math.Floor(pos);
        return i + 1 < values.Length ? values[i] + (pos - i) * (values[i + 1] - values[i]) : values[i];
    }
}
