namespace MambaAD.Evaluation;

/// <summary>The seven official metrics (spec §14), in the official order.</summary>
public enum Metric
{
    /// <summary>Image AUROC (sklearn roc_auc_score on max-of-mask labels and max-of-map scores).</summary>
    IAuroc,

    /// <summary>Image average precision.</summary>
    IAp,

    /// <summary>Image F1max over all thresholds.</summary>
    IF1Max,

    /// <summary>Pixel AUROC, all pixels of the class pooled.</summary>
    PAuroc,

    /// <summary>Pixel average precision.</summary>
    PAp,

    /// <summary>Pixel F1max over 21 fixed thresholds on the min–max normalised maps.</summary>
    PF1Max,

    /// <summary>Area under the PRO curve up to FPR 0.3 (min–max rescaled).</summary>
    AuPro,
}
