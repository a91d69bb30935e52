using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.Inference;

namespace MambaAD.Tests.Inference;

/// <summary>Calibration from a test run's streamed statistics (no maps kept), checked against brute force over the pixels.</summary>
public class CalibrationTests
{
    private const int Size = 12;

    /// <summary>A test report as <see cref="ModelTesting"/> builds it, from maps and masks.</summary>
    private static TestReport Report(IReadOnlyList<(float[] Map, byte[] Mask, bool Folder)> items)
    {
        var ev = new Evaluator(Size, Size);
        var images = new List<ImageResult>();
        for (int i = 0; i < items.Count; i++)
        {
            var (map, mask, folder) = items[i];
            ev.Add("c", map, mask, folder);
            images.Add(new ImageResult(new Sample($"/x/{i}.png", "c", folder ? "bad" : "good", null, folder), map.Max(), mask.Any(v => v != 0), true));
        }
        return new TestReport(ev.Evaluate(), images, [], Size) { Pixels = ev.Pixels };
    }

    private static List<(float[] Map, byte[] Mask, bool Folder)> Items(Random rng, int n, bool defects)
    {
        var items = new List<(float[], byte[], bool)>();
        for (int i = 0; i < n; i++)
        {
            bool defect = defects && i % 2 == 1;
            var map = new float[Size * Size];
            var mask = new byte[Size * Size];
            for (int k = 0; k < map.Length; k++) map[k] = (float)Math.Round(rng.NextDouble(), 3); // ties
            if (defect) for (int k = rng.Next(100), e = k + rng.Next(4, 30); k < e; k++) { mask[k] = 1; map[k] += 0.4f; }
            items.Add((map, mask, defect));
        }
        return items;
    }

    [Fact]
    public void Pixel_threshold_reaches_the_best_pixel_f1_of_any_cut()
    {
        var items = Items(new Random(2), 20, defects: true);
        var t = Calibration.Choose(Report(items));
        var values = items.SelectMany(i => i.Map).ToArray();
        var labels = items.SelectMany(i => i.Mask).ToArray();
        double F1(double cut)
        {
            long tp = 0, fp = 0, p = labels.Count(l => l != 0);
            for (int k = 0; k < values.Length; k++) if (values[k] > cut) { if (labels[k] != 0) tp++; else fp++; }
            return 2.0 * tp / (tp + fp + p);
        }
        double best = values.Distinct().Select(v => F1(v)).Append(F1(values.Min() - 1)).Max();
        Assert.NotNull(t.Pixel);
        Assert.Equal(best, F1(t.Pixel!.Value), 12);
        // Halfway between distinct values: no pixel sits on the cut.
        Assert.DoesNotContain(values, v => v == t.Pixel.Value);
    }

    [Fact]
    public void Normal_only_thresholds_are_the_quantiles_of_scores_and_of_all_pixels()
    {
        var items = Items(new Random(3), 15, defects: false);
        var t = Calibration.Choose(Report(items), 0.9);
        static double Quantile(IEnumerable<double> v, double q)
        {
            var s = v.Order().ToArray();
            double pos = q * (s.Length - 1);
            int i = (int)Math.Floor(pos);
            return i + 1 < s.Length ? s[i] + (pos - i) * (s[i + 1] - s[i]) : s[i];
        }
        Assert.Equal(Quantile(items.Select(i => (double)i.Map.Max()), 0.9), t.Image!.Value, 12);
        Assert.Equal(Quantile(items.SelectMany(i => i.Map).Select(v => (double)v), 0.9), t.Pixel!.Value, 12);
        Assert.Contains("0.9 quantile of 15 normal images", t.Method);
    }
}
