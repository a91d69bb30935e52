using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MambaAD.Evaluation;

/// <summary>
/// Per-class metrics, their mean over classes and mAD (spec §14). The mean of a metric is over the classes where it
/// is available; mAD is the mean of the available class-averaged metrics (so a dataset without any masks gets the
/// mean of the three image metrics).
/// </summary>
public sealed class EvaluationResult
{
    /// <summary>Class name → metrics, in dataset class order.</summary>
    public IReadOnlyList<KeyValuePair<string, ClassMetrics>> Classes { get; }

    /// <summary>The mean over classes of each metric; its <see cref="ClassMetrics.MAD"/> is the dataset mAD.</summary>
    public ClassMetrics Mean { get; }

    /// <summary>Anomalous images (by folder) whose mask vanished after resizing, so they count as normal (§12.6), per class.</summary>
    public IReadOnlyDictionary<string, int> VanishedMasks { get; }

    internal EvaluationResult(IReadOnlyList<KeyValuePair<string, ClassMetrics>> classes, IReadOnlyDictionary<string, int> vanished)
    {
        Classes = classes;
        VanishedMasks = vanished;
        var means = new Dictionary<Metric, double?>();
        foreach (var row in MetricTable.Rows)
        {
            var v = classes.Select(c => c.Value[row.Metric]).OfType<double>().ToArray();
            means[row.Metric] = v.Length == 0 ? null : v.Average();
        }
        Mean = new ClassMetrics(means);
    }

    /// <summary>
    /// JSON: <c>{"classes": {"&lt;class&gt;": {"I-AUROC": …, …, "mAD": …}}, "mean": {…}}</c>, values ×100 as in the
    /// paper, null where unavailable.
    /// </summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("classes");
            foreach (var (name, m) in Classes) WriteMetrics(w, name, m);
            w.WriteEndObject();
            WriteMetrics(w, "mean", Mean);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void WriteMetrics(Utf8JsonWriter w, string name, ClassMetrics m)
    {
        w.WriteStartObject(name);
        var values = m.Values;
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] is { } v) w.WriteNumber(ClassMetrics.Names[i], v * 100);
            else w.WriteNull(ClassMetrics.Names[i]);
        }
        w.WriteEndObject();
    }

    /// <summary>A plain-text table: one row per class and a mean row, values ×100 with one decimal, "–" where unavailable.</summary>
    public string ToTable()
    {
        var header = new List<string> { "class" };
        header.AddRange(ClassMetrics.Names);
        var rows = Classes.Select(c => Row(c.Key, c.Value)).ToList();
        rows.Add(Row("mean", Mean));
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(IReadOnlyList<string> cells) =>
            sb.AppendLine(string.Join("  ", cells.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd());
        Line(header);
        sb.AppendLine(new string('-', widths.Sum() + 2 * (widths.Length - 1)));
        for (int i = 0; i < rows.Count; i++)
        {
            if (i == rows.Count - 1) sb.AppendLine(new string('-', widths.Sum() + 2 * (widths.Length - 1)));
            Line(rows[i]);
        }
        return sb.ToString();
    }

    private static List<string> Row(string name, ClassMetrics m)
    {
        var r = new List<string> { name };
        r.AddRange(m.Values.Select(v => v is { } x ? (x * 100).ToString("F1", CultureInfo.InvariantCulture) : "–"));
        return r;
    }
}
