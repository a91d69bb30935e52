using MambaAD.Evaluation;

namespace MambaAD.Tests.Evaluation;

/// <summary>First oracle: small cases whose answers are worked out by hand in the comments.</summary>
public class MetricsHandTests
{
    // labels 0 0 1 1, scores .1 .4 .35 .8.
    // AUROC: positive/negative pairs won: .35>.1, .8>.1, .8>.4; lost: .35<.4 → 3/4.
    // Curve by decreasing score: .8 (tp1 fp0: P 1, R .5), .4 (tp1 fp1: P .5, R .5), .35 (tp2 fp1: P 2/3, R 1), .1.
    // AP = .5·1 + 0·.5 + .5·2/3 = 5/6. F1 at the points: 2/3, 1/2, 0.8 → F1max 0.8.
    private static readonly int[] Labels = [0, 0, 1, 1];
    private static readonly double[] Scores = [0.1, 0.4, 0.35, 0.8];

    [Fact]
    public void Image_metrics_on_a_hand_case()
    {
        Assert.Equal(0.75, Metrics.Auroc(Labels, Scores), 12);
        Assert.Equal(5.0 / 6, Metrics.AveragePrecision(Labels, Scores), 12);
        Assert.Equal(0.8, Metrics.F1Max(Labels, Scores), 12);
    }

    // A tie between a positive and a negative is one curve point (tp1 fp1): AUROC 1/2 (the diagonal),
    // AP = 1·(1/2) = 1/2, F1 = 2·(1/2)·1/(3/2) = 2/3. Sorting order must not matter.
    [Fact]
    public void Ties_are_one_curve_point()
    {
        foreach (var (l, s) in new[] { (new[] { 0, 1 }, new[] { 0.5, 0.5 }), (new[] { 1, 0 }, new[] { 0.5, 0.5 }) })
        {
            Assert.Equal(0.5, Metrics.Auroc(l, s), 12);
            Assert.Equal(0.5, Metrics.AveragePrecision(l, s), 12);
            Assert.Equal(2.0 / 3, Metrics.F1Max(l, s), 12);
        }
    }

    [Fact]
    public void Pixel_curve_equals_image_curve_on_the_same_values()
    {
        var rng = new Random(20231129);
        var values = Enumerable.Range(0, 500).Select(_ => (float)Math.Round(rng.NextDouble() * 20) / 20f).ToArray(); // many ties
        var labels = values.Select(v => rng.NextDouble() < 0.2 + 0.5 * v ? 1 : 0).ToArray();
        var (auroc, ap) = Metrics.PixelCurve([values], [labels.Select(l => (byte)l).ToArray()]);
        var d = values.Select(v => (double)v).ToArray();
        Assert.Equal(Metrics.Auroc(labels, d), auroc, 12);
        Assert.Equal(Metrics.AveragePrecision(labels, d), ap, 12);
        // AUROC is also the Mann–Whitney statistic with ties counted ½.
        double wins = 0; int np = 0, nn = 0;
        for (int i = 0; i < d.Length; i++)
        {
            if (labels[i] == 0) { nn++; continue; }
            np++;
            for (int j = 0; j < d.Length; j++)
                if (labels[j] == 0) wins += d[i] > d[j] ? 1 : d[i] == d[j] ? 0.5 : 0;
        }
        Assert.Equal(wins / ((double)np * nn), auroc, 12);
    }

    // Map 0, .5, 1 with mask 0 0 1 (already min–max normalised).
    // τ = 0: pred {.5, 1}: P ≈ 1/2, R ≈ 1, F1 ≈ 2/3. τ ≥ .5: pred {1}: P = R = p = 1/(1 + 1e-8) (the 1e-8 guards),
    // F1 = 2p²/(2p + 1e-8). τ = 1: nothing predicted, F1 = 0. The max is at τ ≥ .5.
    [Fact]
    public void Pixel_f1max_on_a_hand_case()
    {
        var f1 = Metrics.PixelF1PerThreshold([[0f, 0.5f, 1f]], [[0, 0, 1]]);
        Assert.Equal(2.0 / 3, f1[0], 6);
        Assert.Equal(0.0, f1[20], 12);
        double p = 1 / (1 + 1e-8);
        Assert.Equal(2 * p * p / (2 * p + 1e-8), Metrics.PixelF1Max([[0f, 0.5f, 1f]], [[0, 0, 1]]), 12);
    }

    // One 1×13 image. Negatives: 0 and .055, .155, …, .955 (11 pixels). One region of two pixels: 1.0 and .905.
    // min 0, max 1 → θ = 0, .01, …, .99. FPR < .3 means ≤ 3 of 11 negatives above θ: θ ≥ .66.
    //   θ ∈ [.66,.75]: FPR 3/11; [.76,.85]: 2/11; [.86,.95]: 1/11; [.96,.99]: 0. Rescaled x = 1, 2/3, 1/3, 0.
    //   PRO = 1 while θ < .905, then 1/2 (only the 1.0 pixel exceeds θ).
    // Trapezoid: 1→2/3 at PRO 1: 1/3; 2/3→1/3 at PRO 1: 1/3; vertical drop at x = 1/3; 1/3→0 at PRO 1/2: 1/6. Total 5/6.
    [Fact]
    public void Aupro_on_a_hand_case()
    {
        var map = new float[13];
        for (int k = 0; k < 10; k++) map[1 + k] = k / 10f + 0.055f;
        map[11] = 1f;
        map[12] = 0.905f;
        var mask = new byte[13];
        mask[11] = mask[12] = 1;
        Assert.Equal(5.0 / 6, Metrics.AuPro([map], [mask], 1, 13), 12);
    }

    // 8-connectivity: a diagonal touch joins; a gap of one pixel separates.
    //   1 0 0 1
    //   0 1 0 0
    //   0 0 0 1
    [Fact]
    public void Components_are_eight_connected()
    {
        byte[] mask = [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1];
        var labels = ConnectedComponents.Label(mask, 3, 4, out int count);
        Assert.Equal(3, count);
        Assert.Equal(labels[0], labels[5]);
        Assert.NotEqual(labels[3], labels[11]);
    }

    [Fact]
    public void Numpy_arange_length_and_values()
    {
        var t = Metrics.NumpyArange(0, 1, 0.01);
        Assert.Equal(100, t.Length);
        Assert.Equal(0.0, t[0]);
        Assert.Equal(3 * 0.01, t[3]);
    }

    [Fact]
    public void Mean_and_mAD_skip_unavailable_pixel_metrics()
    {
        var ev = new Evaluator(1, 2);
        // class "img": defect images without masks → image metrics only.
        ev.Add("img", [0f, 0.1f], null, false);
        ev.Add("img", [0f, 0.9f], null, true);
        var r = ev.Evaluate();
        var m = r.Classes.Single().Value;
        Assert.Equal(1.0, m.IAuroc);
        Assert.Null(m.PAuroc);
        Assert.Null(m.AuPro);
        Assert.Equal(1.0, m.MAD);
        Assert.Contains("\"P-AUROC\": null", r.ToJson());
        Assert.Contains("–", r.ToTable());
    }
}
