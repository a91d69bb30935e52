using Xunit.Abstractions;
using System.Text.Json;
using MambaAD.Evaluation;
using MambaAD.IO;

namespace MambaAD.Tests.Evaluation;

/// <summary>
/// Second oracle: the official ADer Evaluator (sklearn path, spec §14) on shared/golden/metrics_inputs.npz, whose
/// numbers are in metrics.json. Read with our own .npz reader.
/// </summary>
public class MetricsGoldenTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-6;
    private static readonly string[] Keys = ["mAUROC_sp_max", "mAP_sp_max", "mF1_max_sp_max", "mAUROC_px", "mAP_px", "mF1_max_px", "mAUPRO_px"];

    private static (string[] Names, EvaluationResult Result, Evaluator Ev, List<(int Cls, float[] Map, byte[] Mask)> Items) Run()
    {
        var npz = NpyArray.ReadNpz(SharedData.Golden("metrics_inputs.npz"));
        var names = npz["class_names"].ToStringArray();
        var maps = npz["maps"].ToFloatArray();
        var masks = npz["masks"].Data;
        var cls = npz["cls_index"].ToDoubleArray();
        var folder = npz["folder_labels"].ToDoubleArray();
        int n = npz["maps"].Shape[0], h = npz["maps"].Shape[1], w = npz["maps"].Shape[2];
        var ev = new Evaluator(h, w);
        var items = new List<(int, float[], byte[])>();
        for (int i = 0; i < n; i++)
        {
            var map = maps.AsSpan(i * h * w, h * w).ToArray();
            var mask = masks.AsSpan(i * h * w, h * w).ToArray();
            ev.Add(names[(int)cls[i]], map, mask, folder[i] != 0);
            items.Add(((int)cls[i], map, mask));
        }
        return (names, ev.Evaluate(), ev, items);
    }

    [GoldenFact]
    public void All_seven_metrics_mean_and_mAD_match_official()
    {
        var (names, result, _, _) = Run();
        using var json = JsonDocument.Parse(File.ReadAllText(SharedData.Golden("metrics.json")));
        var classes = json.RootElement.GetProperty("classes");
        Assert.Equal(names, result.Classes.Select(c => c.Key));
        double worst = 0;
        foreach (var (name, m) in result.Classes)
            for (int k = 0; k < 7; k++)
            {
                double want = classes.GetProperty(name).GetProperty(Keys[k]).GetDouble();
                double got = m.Values[k]!.Value;
                worst = Math.Max(worst, Math.Abs(got - want));
                Assert.True(Math.Abs(got - want) <= Tolerance, $"{name} {ClassMetrics.Names[k]}: {got} vs official {want}");
            }
        output.WriteLine($"max |Δ| over 3 classes × 7 metrics vs metrics.json: {worst:G3}");
        var mean = json.RootElement.GetProperty("mean_over_classes");
        for (int k = 0; k < 7; k++)
            Assert.True(Math.Abs(result.Mean.Values[k]!.Value - mean.GetProperty(Keys[k]).GetDouble()) <= Tolerance, $"mean {Keys[k]}");
        output.WriteLine($"mAD {result.Mean.MAD:R} vs official {json.RootElement.GetProperty("mAD").GetDouble():R}");
        Assert.True(Math.Abs(result.Mean.MAD!.Value - json.RootElement.GetProperty("mAD").GetDouble()) <= Tolerance, "mAD");
        // cls_b has an anomalous-by-folder image whose mask is empty (README): it is counted.
        Assert.Equal(1, result.VanishedMasks.GetValueOrDefault("cls_b"));
    }

    [GoldenFact]
    public void Curves_match_official_details()
    {
        var (names, _, _, items) = Run();
        using var json = JsonDocument.Parse(File.ReadAllText(SharedData.Golden("metrics.json")));
        for (int c = 0; c < names.Length; c++)
        {
            var d = json.RootElement.GetProperty("details").GetProperty(names[c]);
            var maps = items.Where(i => i.Cls == c).Select(i => i.Map).ToList();
            var masks = items.Where(i => i.Cls == c).Select(i => i.Mask).ToList();
            var (_, pro, fpr, kept) = Metrics.AuProCurve(maps, masks, 64, 64);
            Assert.Equal(d.GetProperty("aupro_n_thresholds").GetInt32(), pro.Length);
            Assert.Equal(d.GetProperty("aupro_n_kept_fpr_lt_0_3").GetInt32(), kept);
            var wantPro = d.GetProperty("aupro_curve_pro").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var wantFpr = d.GetProperty("aupro_curve_fpr").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (int t = 0; t < pro.Length; t++)
            {
                Assert.True(Math.Abs(pro[t] - wantPro[t]) < 1e-12, $"{names[c]} PRO[{t}] {pro[t]} vs {wantPro[t]}");
                Assert.True(Math.Abs(fpr[t] - wantFpr[t]) < 1e-12, $"{names[c]} FPR[{t}] {fpr[t]} vs {wantFpr[t]}");
            }
            var f1 = Metrics.PixelF1PerThreshold(maps, masks);
            var wantF1 = d.GetProperty("pf1_per_threshold").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (int t = 0; t < 21; t++) Assert.True(Math.Abs(f1[t] - wantF1[t]) < 1e-12, $"{names[c]} F1[{t}] {f1[t]} vs {wantF1[t]}");
        }
    }
}
