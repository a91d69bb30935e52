using MambaAD.Evaluation;
using Xunit.Abstractions;

namespace MambaAD.Tests.Evaluation;

/// <summary>
/// The streaming <see cref="Evaluator"/> (pixel histograms, no maps kept) against the exact reference
/// (<see cref="Metrics"/> over all maps, as the evaluator computed before): equal while the histogram holds every
/// distinct value; when it must round, equal to the exact metrics of the rounded maps, and within the stated bounds
/// of the exact metrics of the maps themselves.
/// </summary>
public class StreamingEvaluationTests(ITestOutputHelper output)
{
    private sealed record Item(string Class, float[] Map, byte[]? Mask, bool Folder);

    /// <summary>The reference: every map kept, the metrics of <see cref="Metrics"/> per class (the evaluator before streaming).</summary>
    private static Dictionary<string, double?[]> Exact(IReadOnlyList<Item> items, int h, int w, Func<float, float>? round = null)
    {
        var result = new Dictionary<string, double?[]>();
        foreach (var g in items.GroupBy(i => i.Class))
        {
            var list = g.Select(i => i with { Mask = i.Mask ?? (i.Folder ? null : new byte[h * w]), Map = round is null ? i.Map : i.Map.Select(round).ToArray() }).ToList();
            var labels = list.Select(i => i.Mask is null ? 1 : i.Mask.Any(v => v != 0) ? 1 : 0).ToArray();
            var values = MetricTable.Image(labels, g.Select(i => (double)i.Map.Max()).ToArray());
            if (list.Any(i => i.Folder && i.Mask is not null))
            {
                var withGt = list.Where(i => i.Mask is not null).ToList();
                foreach (var (m, v) in MetricTable.Pixel(withGt.Select(i => i.Map).ToList(), withGt.Select(i => i.Mask!).ToList(), h, w)) values[m] = v;
            }
            result[g.Key] = MetricTable.Rows.Select(r => values.TryGetValue(r.Metric, out var v) && double.IsFinite(v) ? v : (double?)null).ToArray();
        }
        return result;
    }

    private static (EvaluationResult Result, Evaluator Evaluator) Streamed(IEnumerable<Item> items, int h, int w, long cap = PixelHistogram.DefaultMemoryCap)
    {
        var ev = new Evaluator(h, w, cap);
        foreach (var i in items) ev.Add(i.Class, (float[])i.Map.Clone(), i.Mask, i.Folder);
        return (ev.Evaluate(), ev);
    }

    /// <summary>Smooth maps (blurred noise) with round defects that raise the map: what a model's maps look like.</summary>
    private static List<Item> Realistic(string cls, int n, int size, Random rng)
    {
        var items = new List<Item>();
        for (int i = 0; i < n; i++)
        {
            var mask = new byte[size * size];
            var raw = new double[size * size];
            for (int k = 0; k < raw.Length; k++) raw[k] = rng.NextDouble();
            bool defect = i % 2 == 1;
            if (defect)
                for (int b = rng.Next(1, 4); b > 0; b--)
                {
                    int cx = rng.Next(size), cy = rng.Next(size), r = rng.Next(2, size / 8);
                    for (int y = Math.Max(0, cy - r); y < Math.Min(size, cy + r); y++)
                        for (int x = Math.Max(0, cx - r); x < Math.Min(size, cx + r); x++)
                            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r) { mask[y * size + x] = 1; raw[y * size + x] += 1.2; }
                }
            Blur(raw, size);
            items.Add(new Item(cls, raw.Select(v => (float)(0.05 + 0.3 * v)).ToArray(), mask, defect));
        }
        return items;
    }

    private static void Blur(double[] a, int size)
    {
        var t = new double[a.Length];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double s = 0; int c = 0;
                for (int d = -3; d <= 3; d++) if (x + d >= 0 && x + d < size) { s += a[y * size + x + d]; c++; }
                t[y * size + x] = s / c;
            }
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double s = 0; int c = 0;
                for (int d = -3; d <= 3; d++) if (y + d >= 0 && y + d < size) { s += t[(y + d) * size + x]; c++; }
                a[y * size + x] = s / c;
            }
    }

    private static double Worst(Dictionary<string, double?[]> want, EvaluationResult got)
    {
        double worst = 0;
        foreach (var (name, m) in got.Classes)
            for (int k = 0; k < MetricTable.Rows.Count; k++)
            {
                var (a, b) = (want[name][k], m.Values[k]);
                Assert.True(a.HasValue == b.HasValue, $"{name} {ClassMetrics.Names[k]}: {a} vs {b}");
                if (a is { } x && b is { } y) worst = Math.Max(worst, Math.Abs(x - y));
            }
        return worst;
    }

    [Fact]
    public void Streamed_metrics_equal_the_exact_reference_on_random_cases()
    {
        var rng = new Random(20261201);
        const int h = 24, w = 20;
        var items = new List<Item>();
        // "ties": few distinct values, negatives included; "smooth": realistic maps; "nomask": defects without masks
        // (no pixel metrics); "vanish": a defect whose mask is empty; "normal": normal images only.
        foreach (var cls in new[] { "ties", "smooth", "nomask", "vanish", "normal" })
            for (int i = 0; i < 14; i++)
            {
                bool defect = cls != "normal" && i % 3 != 0;
                var map = new float[h * w];
                var mask = new byte[h * w];
                for (int k = 0; k < map.Length; k++)
                    map[k] = cls == "ties" ? (rng.Next(9) - 2) / 4f : (float)rng.NextDouble();
                if (defect && !(cls == "vanish" && i == 1))
                    for (int k = rng.Next(map.Length - 40), e = k + rng.Next(3, 40); k < e; k++) { mask[k] = 1; map[k] += cls == "ties" ? 0.5f : 0.3f; }
                items.Add(new Item(cls, map, cls == "nomask" && defect ? null : defect ? mask : null, defect));
            }
        var smooth = Realistic("smooth", 14, 20, rng);
        items.RemoveAll(i => i.Class == "smooth");
        items.AddRange(smooth.Select(s => s with { Map = s.Map.Take(h * w).Concat(new float[Math.Max(0, h * w - s.Map.Length)]).ToArray(), Mask = s.Mask!.Take(h * w).Concat(new byte[Math.Max(0, h * w - s.Mask!.Length)]).ToArray() }));

        var (result, _) = Streamed(items, h, w);
        double worst = Worst(Exact(items, h, w), result);
        output.WriteLine($"max |streamed − exact| over 5 classes × 7 metrics: {worst:G3}");
        Assert.True(worst <= 1e-12, $"{worst}");
        Assert.All(result.PixelRounding.Values, r => Assert.Equal(0, r));
        Assert.Null(result.Classes.Single(c => c.Key == "nomask").Value.PAuroc);
        Assert.Null(result.Classes.Single(c => c.Key == "normal").Value.AuPro);
        Assert.Equal(1, result.VanishedMasks["vanish"]);
    }

    [Fact]
    public void Rounded_bins_give_the_exact_metrics_of_the_rounded_maps_and_stay_within_bounds()
    {
        const int size = 48;
        var items = Realistic("c", 40, size, new Random(7));
        long cap = 1024 * 28; // 1024 bins: far fewer than the ~90,000 distinct values, so values must be rounded
        var (result, ev) = Streamed(items, size, size, cap);
        var histogram = ev.Pixels.Single().Value;
        int shift = histogram.Shift;
        Assert.True(shift > 0);
        Assert.Equal(Math.ScaleB(1, shift - 23), result.PixelRounding["c"]);
        // Rounding a value down to its bin: clear the key's low bits.
        float Round(float v) => PixelHistogram.Value(PixelHistogram.Key(v) >> shift << shift);
        double ofRounded = Worst(Exact(items, size, size, Round), result);
        output.WriteLine($"shift {shift}: max |streamed − exact(rounded maps)| {ofRounded:G3}");
        Assert.True(ofRounded <= 1e-12, $"{ofRounded}");

        var exact = Exact(items, size, size)["c"];
        var got = result.Classes.Single().Value;
        double bound = HistogramMetrics.AurocBound(histogram.Bins(), shift);
        output.WriteLine($"P-AUROC Δ {got.PAuroc - exact[3]:G3} (bound {bound:G3}), P-AP Δ {got.PAp - exact[4]:G3}, P-F1max Δ {got.PF1Max - exact[5]:G3}, AU-PRO Δ {got.AuPro - exact[6]:G3}");
        Assert.True(Math.Abs(got.PAuroc!.Value - exact[3]!.Value) <= bound, "P-AUROC outside its bound");
        Assert.True(bound > 0);
    }

    [Fact]
    public void Realistic_rounding_stays_within_1e_4_on_the_x100_scale()
    {
        // A class rounded as a large one is under the default cap: its bins hold ~600,000 values, 2^17 or more per
        // binade over the 3–4 binades model maps span, i.e. rounding by less than 2^-17 (7.6e-6). Here 60 smooth 96²
        // maps squeezed into one binade [0.25, 0.5) under a cap of 2^16 bins are rounded about as much, and every pixel
        // metric stays within 1e-6 of the exact one (1e-4 on the ×100 scale).
        const int size = 96;
        var items = Realistic("c", 60, size, new Random(11))
            .Select(i => i with { Map = i.Map.Select(v => 0.25f + 0.2499f * Math.Clamp((v - 0.05f) / 0.6f, 0f, 1f)).ToArray() }).ToList();
        var (result, _) = Streamed(items, size, size, 65536 * 28);
        double worst = Worst(Exact(items, size, size), result);
        output.WriteLine($"rounding {result.PixelRounding["c"]:G3}: max |streamed − exact| {worst:G3} (×100: {100 * worst:G3})");
        Assert.InRange(result.PixelRounding["c"], Math.ScaleB(1, -19), Math.ScaleB(1, -16));
        Assert.True(worst <= 1e-6, $"{worst}");
    }

    [Fact]
    public void Order_of_images_does_not_change_the_result()
    {
        const int size = 32;
        var items = Realistic("c", 30, size, new Random(3));
        var shuffled = items.OrderBy(_ => Guid.NewGuid()).ToList();
        foreach (long cap in new long[] { PixelHistogram.DefaultMemoryCap, 2000 * 28 })
        {
            var (a, _) = Streamed(items, size, size, cap);
            var (b, _) = Streamed(shuffled, size, size, cap);
            Assert.Equal(a.PixelRounding["c"], b.PixelRounding["c"]);
            for (int k = 3; k < 7; k++) Assert.Equal(a.Classes[0].Value.Values[k]!.Value, b.Classes[0].Value.Values[k]!.Value, 12);
        }
    }

    [Fact]
    public void Merged_histograms_count_every_pixel_once_at_the_coarser_resolution()
    {
        var rng = new Random(5);
        var maps = Enumerable.Range(0, 6).Select(_ => Enumerable.Range(0, 400).Select(_ => (float)rng.NextDouble()).ToArray()).ToList();
        var masks = maps.Select(m => m.Select(v => v > 0.8f ? (byte)1 : (byte)0).ToArray()).ToList();
        var regions = masks.Select(m => m.Select(v => (int)v).ToArray()).ToList();
        double[] weight = [0, 0.25];
        var fine = new PixelHistogram();
        var coarse = new PixelHistogram(1024 * 28);
        var all = new PixelHistogram(1024 * 28);
        for (int i = 0; i < maps.Count; i++)
        {
            (i < 3 ? fine : coarse).Add(maps[i], masks[i], regions[i], weight);
            all.Add(maps[i], masks[i], regions[i], weight);
        }
        var merged = PixelHistogram.Merge([fine, coarse], 1024 * 28);
        Assert.Equal(all.Shift, merged.Shift);
        Assert.True(merged.Shift > 0);
        var (want, got) = (all.Bins(), merged.Bins());
        Assert.Equal(want.Select(b => (b.Value, b.Neg, b.Pos)), got.Select(b => (b.Value, b.Neg, b.Pos)));
        for (int k = 0; k < want.Length; k++) Assert.Equal(want[k].Weight, got[k].Weight, 12);
        Assert.Equal(2400, merged.Positives + merged.Negatives);
    }

    [Fact]
    public void The_evaluator_keeps_no_map()
    {
        var ev = new Evaluator(2, 2);
        var map = new float[] { 0.1f, 0.2f, 0.9f, 0.3f };
        ev.Add("c", map, [0, 0, 1, 0], true);
        ev.Add("c", [0.2f, 0.1f, 0.1f, 0.1f], [0, 0, 0, 0], false);
        var before = ev.Evaluate().Classes[0].Value.Values;
        Array.Fill(map, 0f); // a caller that reuses its buffer changes nothing
        Assert.Equal(before, ev.Evaluate().Classes[0].Value.Values);
        Assert.Equal(1, before[3]); // P-AUROC: the defect pixel is the highest
    }
}
