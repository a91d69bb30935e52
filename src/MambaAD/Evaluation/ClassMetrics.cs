namespace MambaAD.Evaluation;

/// <summary>
/// The seven official metrics of one class (or their mean over classes), as fractions in [0, 1] (the paper and the
/// CLI show ×100), and mAD. A pixel metric is null when it is unavailable: none of the class's defect images has a
/// mask. Any metric is null when undefined for the data (e.g. a class without anomalous images has no AUROC).
/// </summary>
public sealed class ClassMetrics
{
    private readonly IReadOnlyDictionary<Metric, double?> _values;

    internal ClassMetrics(IReadOnlyDictionary<Metric, double?> values)
    {
        _values = values;
        var available = MetricTable.Rows.Select(r => this[r.Metric]).OfType<double>().ToArray();
        MAD = available.Length == 0 ? null : available.Average();
    }

    /// <summary>The value of <paramref name="metric"/>, or null where unavailable or undefined.</summary>
    public double? this[Metric metric] => _values.TryGetValue(metric, out var v) ? v : null;

    /// <summary>Image AUROC.</summary>
    public double? IAuroc => this[Metric.IAuroc];

    /// <summary>Image average precision.</summary>
    public double? IAp => this[Metric.IAp];

    /// <summary>Image F1max.</summary>
    public double? IF1Max => this[Metric.IF1Max];

    /// <summary>Pixel AUROC.</summary>
    public double? PAuroc => this[Metric.PAuroc];

    /// <summary>Pixel average precision.</summary>
    public double? PAp => this[Metric.PAp];

    /// <summary>Pixel F1max.</summary>
    public double? PF1Max => this[Metric.PF1Max];

    /// <summary>AU-PRO.</summary>
    public double? AuPro => this[Metric.AuPro];

    /// <summary>Mean of the available metrics above (for the dataset mean: of the class-averaged metrics).</summary>
    public double? MAD { get; }

    /// <summary>The paper's names, in the official order, then mAD.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. MetricTable.Rows.Select(r => r.Name), MetricTable.MadName];

    /// <summary>The values in the order of <see cref="Names"/>.</summary>
    public double?[] Values => [.. MetricTable.Rows.Select(r => this[r.Metric]), MAD];

    /// <summary>The metrics with every non-finite value (undefined for the data) as null.</summary>
    internal static ClassMetrics Finite(IEnumerable<KeyValuePair<Metric, double>> values) =>
        new(values.ToDictionary(p => p.Key, p => double.IsFinite(p.Value) ? p.Value : (double?)null));
}
