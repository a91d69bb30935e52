namespace MambaAD.Evaluation;

/// <summary>Whether a metric scores images (one score per image) or pixels (the maps against the masks).</summary>
internal enum MetricLevel { Image, Pixel }

/// <summary>
/// The metric table: every metric's name as the paper prints it, its level and how it is computed. Tables, JSON, CSV,
/// the report and the trainer's log all list the metrics from here, so a new metric is one enum member, one row here
/// and its computation (<see cref="Metrics"/>).
/// </summary>
internal static class MetricTable
{
    /// <summary>One row: the metric, its printed name and its level.</summary>
    public sealed record Row(Metric Metric, string Name, MetricLevel Level);

    /// <summary>The rows in the official order.</summary>
    public static IReadOnlyList<Row> Rows { get; } =
    [
        new(Metric.IAuroc, "I-AUROC", MetricLevel.Image),
        new(Metric.IAp, "I-AP", MetricLevel.Image),
        new(Metric.IF1Max, "I-F1max", MetricLevel.Image),
        new(Metric.PAuroc, "P-AUROC", MetricLevel.Pixel),
        new(Metric.PAp, "P-AP", MetricLevel.Pixel),
        new(Metric.PF1Max, "P-F1max", MetricLevel.Pixel),
        new(Metric.AuPro, "AU-PRO", MetricLevel.Pixel),
    ];

    /// <summary>The mean of the available metrics, printed after them.</summary>
    public const string MadName = "mAD";

    /// <summary>The image metrics of one class from its labels (max of mask) and image scores; NaN where undefined.</summary>
    public static Dictionary<Metric, double> Image(int[] labels, double[] scores) => new()
    {
        [Metric.IAuroc] = Metrics.Auroc(labels, scores),
        [Metric.IAp] = Metrics.AveragePrecision(labels, scores),
        [Metric.IF1Max] = Metrics.F1Max(labels, scores),
    };

    /// <summary>The pixel metrics of one class from the maps and masks of its images with ground truth; NaN where undefined.</summary>
    public static Dictionary<Metric, double> Pixel(IReadOnlyList<float[]> maps, IReadOnlyList<byte[]> masks, int height, int width)
    {
        // The sorted curve and the two histogram metrics are independent: run them side by side.
        (double Auroc, double AP) curve = default;
        double f1 = 0, aupro = 0;
        Parallel.Invoke(
            () => curve = Metrics.PixelCurve(maps, masks),
            () => { f1 = Metrics.PixelF1Max(maps, masks); aupro = Metrics.AuPro(maps, masks, height, width); });
        return new() { [Metric.PAuroc] = curve.Auroc, [Metric.PAp] = curve.AP, [Metric.PF1Max] = f1, [Metric.AuPro] = aupro };
    }
}
