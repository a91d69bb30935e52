using MambaAD.Data;
using MambaAD.Imaging;

namespace MambaAD.Inference;

/// <summary>
/// The images a report's gallery may show, kept at thumbnail size while a test runs, so that no map outlives its
/// batch. The gallery lists, per class, false positives by falling score, false negatives by rising score, then the
/// correct ones (<c>HtmlReport</c>): that is the normal images by falling score and the anomalous ones by rising
/// score, split at a threshold chosen only at the end. Whatever the threshold, its first <c>n</c> rows are therefore
/// among the <c>n</c> highest-scoring normal images and the <c>n</c> lowest-scoring anomalous ones — the two sets
/// kept here (ties: the earlier image first, as a stable sort).
/// </summary>
internal sealed class Gallery
{
    /// <summary>One kept image: its outcome and the pictures the report draws from (thumbnail side t).</summary>
    /// <param name="Sample">The test image.</param>
    /// <param name="Score">Its image score.</param>
    /// <param name="IsAnomalous">Its ground-truth label.</param>
    /// <param name="Sequence">Its position in the test order (ties keep the earlier image first).</param>
    /// <param name="Rgb">The image as the model saw it, t·t·3 bytes.</param>
    /// <param name="Map">Its smoothed map resized to t×t.</param>
    /// <param name="MapMax">The full map's maximum (the overlay's top colour without a pixel threshold).</param>
    /// <param name="Mask">The ground truth at t×t in {0, 255}, or null without a mask.</param>
    public sealed record Entry(Sample Sample, double Score, bool IsAnomalous, long Sequence, byte[] Rgb, float[] Map, double MapMax, byte[]? Mask);

    private readonly Dictionary<string, (List<Entry> Normal, List<Entry> Anomalous)> _classes = [];
    private long _sequence;

    /// <param name="perClass">Images kept per class and kind (normal, anomalous).</param>
    /// <param name="thumbnailSize">Side of the kept pictures.</param>
    public Gallery(int perClass, int thumbnailSize)
    {
        if (perClass <= 0) throw new ArgumentOutOfRangeException(nameof(perClass), perClass, "must be positive");
        if (thumbnailSize is < 16 or > 1024) throw new MambaADException($"the thumbnail size {thumbnailSize} must be 16…1024", "ThumbnailSize");
        PerClass = perClass;
        ThumbnailSize = thumbnailSize;
    }

    /// <summary>Images kept per class and kind.</summary>
    public int PerClass { get; }

    /// <summary>Side of the kept pictures.</summary>
    public int ThumbnailSize { get; }

    /// <summary>
    /// The first <paramref name="rows"/> gallery rows of a class at <paramref name="threshold"/> ("anomalous when score
    /// &gt; threshold"), with their outcome (FP, FN, TP, TN): false positives by falling score, false negatives by rising
    /// score, then true positives by rising score and true negatives by falling score; the earlier image first among
    /// equal scores. At most <see cref="PerClass"/> rows: beyond that the kept images no longer make the list.
    /// </summary>
    public IReadOnlyList<(Entry Entry, string Outcome)> Rows(string className, double threshold, int rows)
    {
        if (!_classes.TryGetValue(className, out var c)) return [];
        var normal = c.Normal.OrderByDescending(e => e.Score).ThenBy(e => e.Sequence).ToList();
        var anomalous = c.Anomalous.OrderBy(e => e.Score).ThenBy(e => e.Sequence).ToList();
        return normal.Where(e => e.Score > threshold).Select(e => (e, "FP"))
            .Concat(anomalous.Where(e => !(e.Score > threshold)).Select(e => (e, "FN")))
            .Concat(anomalous.Where(e => e.Score > threshold).Select(e => (e, "TP")))
            .Concat(normal.Where(e => !(e.Score > threshold)).Select(e => (e, "TN")))
            .Take(Math.Min(rows, PerClass)).ToList();
    }

    /// <summary>
    /// Considers one tested image: kept (as thumbnails) when it is among the top of its kind so far.
    /// <paramref name="input"/> is its normalised network input (3·S·S), <paramref name="map"/> its S·S map and
    /// <paramref name="mask"/> its S·S ground truth in {0, 1} or null.
    /// </summary>
    public void Offer(Sample sample, double score, bool isAnomalous, ReadOnlySpan<float> input, InputNormalization normalization,
        float[] map, int size, byte[]? mask)
    {
        long sequence = _sequence++;
        if (!_classes.TryGetValue(sample.ClassName, out var c)) _classes[sample.ClassName] = c = ([], []);
        var list = isAnomalous ? c.Anomalous : c.Normal;
        // Rank: normal images by falling score, anomalous by rising score; earlier first among equal scores.
        int Compare(Entry e) => isAnomalous ? e.Score.CompareTo(score) : score.CompareTo(e.Score);
        if (list.Count >= PerClass)
        {
            int worst = 0;
            for (int i = 1; i < list.Count; i++) if (Worse(list[i], list[worst], isAnomalous)) worst = i;
            if (Compare(list[worst]) <= 0) return; // not better than the worst kept (later images lose ties)
            list.RemoveAt(worst);
        }
        int t = ThumbnailSize;
        byte[]? truth = null;
        if (mask is not null)
        {
            truth = new byte[t * t];
            for (int y = 0; y < t; y++)
                for (int x = 0; x < t; x++)
                    truth[y * t + x] = mask[(y * size / t) * size + x * size / t] != 0 ? (byte)255 : (byte)0;
        }
        var rgb = PilResize.Resize(Denormalize(input, normalization, size), size, size, 3, t, t);
        float mapMax = float.NegativeInfinity;
        foreach (var v in map) mapMax = Math.Max(mapMax, v);
        list.Add(new Entry(sample, score, isAnomalous, sequence, rgb, MapResize.ToSize(map, size, t, t), mapMax, truth));
    }

    private static bool Worse(Entry a, Entry b, bool anomalous)
    {
        int byScore = anomalous ? a.Score.CompareTo(b.Score) : b.Score.CompareTo(a.Score);
        return byScore > 0 || byScore == 0 && a.Sequence > b.Sequence;
    }

    /// <summary>The RGB bytes (HWC) of a normalised network input: the inverse of <see cref="InputNormalization.Normalize"/>, rounded.</summary>
    private static byte[] Denormalize(ReadOnlySpan<float> chw, InputNormalization n, int size)
    {
        int plane = size * size;
        var rgb = new byte[plane * 3];
        bool bgr = n.ChannelOrder == ChannelOrder.Bgr;
        for (int c = 0; c < 3; c++)
        {
            int dst = bgr ? 2 - c : c;
            float mean = n.Mean[c], std = n.Std[c];
            for (int i = 0; i < plane; i++)
                rgb[i * 3 + dst] = (byte)Math.Clamp(Math.Round((chw[c * plane + i] * std + mean) / n.Scale), 0, 255);
        }
        return rgb;
    }
}
