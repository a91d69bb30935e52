namespace MambaAD.Evaluation;

/// <summary>
/// The seven official metrics of one class (or their mean over classes), as fractions in [0, 1] (the paper and the
/// CLI show ×100). A pixel metric is null when it is unavailable: none of the class's defect images has a mask.
/// Any metric is null when undefined for the data (e.g. a class without anomalous images has no AUROC).
/// </summary>
/// <param name="IAuroc">Image AUROC (sklearn roc_auc_score on max-of-mask labels and max-of-map scores).</param>
/// <param name="IAp">Image average precision.</param>
/// <param name="IF1Max">Image F1max over all thresholds.</param>
/// <param name="PAuroc">Pixel AUROC, all pixels of the class pooled.</param>
/// <param name="PAp">Pixel average precision.</param>
/// <param name="PF1Max">Pixel F1max over 21 fixed thresholds on the min–max normalised maps.</param>
/// <param name="AuPro">Area under the PRO curve up to FPR 0.3 (min–max rescaled).</param>
/// <param name="MAD">Mean of the available metrics above (for the dataset mean: of the class-averaged metrics).</param>
public sealed record ClassMetrics(double? IAuroc, double? IAp, double? IF1Max, double? PAuroc, double? PAp,
    double? PF1Max, double? AuPro, double? MAD)
{
    /// <summary>The paper's names, in the official order, then mAD.</summary>
    public static IReadOnlyList<string> Names { get; } = ["I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AP", "P-F1max", "AU-PRO", "mAD"];

    /// <summary>The values in the order of <see cref="Names"/>.</summary>
    public double?[] Values => [IAuroc, IAp, IF1Max, PAuroc, PAp, PF1Max, AuPro, MAD];

    internal static ClassMetrics From(double?[] seven)
    {
        var available = seven.Where(v => v.HasValue).Select(v => v!.Value).ToArray();
        double? mad = available.Length == 0 ? null : available.Average();
        return new(seven[0], seven[1], seven[2], seven[3], seven[4], seven[5], seven[6], mad);
    }

    internal static double? Finite(double v) => double.IsFinite(v) ? v : null;
}
