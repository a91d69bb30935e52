using System.Globalization;
using System.Net;
using System.Text;
using MambaAD.Evaluation;
using MambaAD.IO;
using MambaAD.Inference;

namespace MambaAD.Reporting;

/// <summary>
/// One self-contained HTML page about a test run: the seven metrics per class with their mean and mAD; image- and
/// pixel-level ROC and PR curves per class; normal-vs-anomalous score histograms with the threshold; and a heat-map
/// gallery per class (image, ground truth, overlay, predicted mask), worst false positives and false negatives
/// first. Everything is inline (SVG charts, data-URI thumbnails, one style block, no script), so the file opens
/// offline and can be mailed around.
/// </summary>
public static class HtmlReport
{
    private const string ImageColour = "#1f77b4", PixelColour = "#d62728";

    /// <summary>Writes the report to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, TestReport report, ReportOptions? options = null) =>
        AtomicFile.WriteAllText(path, Build(report, options));

    /// <summary>The report as an HTML string.</summary>
    public static string Build(TestReport report, ReportOptions? options = null)
    {
        var o = options ?? new ReportOptions();
        if (o.ThumbnailSize is < 16 or > 1024) throw new ArgumentOutOfRangeException(nameof(options), o.ThumbnailSize, "ThumbnailSize must be 16…1024");
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")
          .Append($"<title>{E(o.Title)}</title><style>{Css}</style></head><body>\n");
        sb.Append($"<header><h1>{E(o.Title)}</h1><dl class=\"meta\">");
        foreach (var (k, v) in o.Metadata ?? []) sb.Append($"<dt>{E(k)}</dt><dd>{E(v)}</dd>");
        sb.Append($"<dt>images</dt><dd>{report.Images.Count} at {report.ImageSize}×{report.ImageSize}</dd>");
        sb.Append($"<dt>thresholds</dt><dd>{E(ThresholdText(o))}</dd></dl></header>\n");

        var byClass = report.Result.Classes.Select(c => c.Key).ToList();
        sb.Append("<nav>").AppendJoin(" · ", byClass.Select(c => $"<a href=\"#{Id(c)}\">{E(c)}</a>")).Append("</nav>\n");
        MetricsTable(sb, report.Result);
        if (report.Warnings.Count > 0)
        {
            sb.Append("<section class=\"warnings\"><h2>Warnings</h2><ul>");
            foreach (var w in report.Warnings) sb.Append($"<li>{E(w)}</li>");
            sb.Append("</ul></section>\n");
        }
        foreach (var name in byClass)
            ClassSection(sb, name, report.Images.Where(r => r.Sample.ClassName == name).ToList(), report.ImageSize, o);
        sb.Append($"<footer>MambaAD for .NET · generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC</footer></body></html>\n");
        return sb.ToString();
    }

    private static void MetricsTable(StringBuilder sb, EvaluationResult result)
    {
        sb.Append("<section><h2>Metrics (×100)</h2><table id=\"metrics\" class=\"metrics\"><thead><tr><th>class</th>");
        foreach (var n in ClassMetrics.Names) sb.Append($"<th>{E(n)}</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var (name, m) in result.Classes.Append(new("mean", result.Mean)))
        {
            sb.Append(name == "mean" && ReferenceEquals(m, result.Mean) ? "<tr class=\"mean\">" : "<tr>");
            sb.Append($"<th>{(ReferenceEquals(m, result.Mean) ? "mean" : $"<a href=\"#{Id(name)}\">{E(name)}</a>")}</th>");
            foreach (var v in m.Values)
                sb.Append(v is { } x ? $"<td style=\"background:{Shade(x)}\">{Percent(x)}</td>" : "<td class=\"na\">–</td>");
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table><p class=\"note\">Pixel metrics are “–” for a class whose defect images have no masks. mAD is the mean of the available metrics.</p></section>\n");
    }

    private static void ClassSection(StringBuilder sb, string name, List<ImageResult> images, int mapSize, ReportOptions o)
    {
        var labels = images.Select(Label).ToArray();
        var scores = images.Select(r => r.Score).ToArray();
        double threshold = o.Thresholds?.Image ?? Metrics.F1MaxThreshold(labels, scores);
        double pixelThreshold = o.Thresholds?.Pixel ?? threshold;
        sb.Append($"<section class=\"class\" id=\"{Id(name)}\"><h2>{E(name)}</h2>");
        sb.Append($"<p class=\"note\">{images.Count} images ({labels.Count(l => l == 0)} normal, {labels.Count(l => l != 0)} anomalous); image threshold {G(threshold)}{(o.Thresholds?.Image is null ? " (best F1 on these images)" : "")}, pixel threshold {G(pixelThreshold)}.</p>");

        var imageCurve = Curve.FromScores(labels, scores);
        var withMask = images.Where(r => r.Mask is not null).ToList();
        var pixelCurve = withMask.Any(r => r.Mask!.Any(v => v != 0)) ? Curve.FromPixels(withMask.Select(r => r.Map).ToList(), withMask.Select(r => r.Mask!).ToList()) : null;
        var roc = new List<SvgChart.Series>();
        var pr = new List<SvgChart.Series>();
        if (imageCurve is not null)
        {
            roc.Add(new("image", ImageColour, imageCurve.Fpr, imageCurve.Tpr));
            pr.Add(new("image", ImageColour, imageCurve.Recall, imageCurve.Precision));
        }
        if (pixelCurve is not null)
        {
            roc.Add(new("pixel", PixelColour, pixelCurve.Fpr, pixelCurve.Tpr));
            pr.Add(new("pixel", PixelColour, pixelCurve.Recall, pixelCurve.Precision));
        }
        sb.Append("<div class=\"charts\">")
          .Append(SvgChart.Lines("roc", $"{name}: ROC", "false positive rate", "true positive rate", roc, diagonal: true))
          .Append(SvgChart.Lines("pr", $"{name}: precision–recall", "recall", "precision", pr, diagonal: false))
          .Append(SvgChart.ScoreHistogram($"{name}: image scores", Pick(scores, labels, 0), Pick(scores, labels, 1), threshold))
          .Append("</div>");
        Gallery(sb, images, labels, threshold, pixelThreshold, mapSize, o);
        sb.Append("</section>\n");
    }

    /// <summary>
    /// False positives by falling score, then false negatives by rising score (the most confident mistakes first),
    /// then correct anomalous images by rising score and correct normal ones by falling score (the near misses).
    /// </summary>
    private static void Gallery(StringBuilder sb, List<ImageResult> images, int[] labels, double threshold, double pixelThreshold, int mapSize, ReportOptions o)
    {
        var idx = Enumerable.Range(0, images.Count).ToList();
        bool Predicted(int i) => images[i].Score > threshold;
        var ordered = idx.Where(i => labels[i] == 0 && Predicted(i)).OrderByDescending(i => images[i].Score).Select(i => (i, "FP"))
            .Concat(idx.Where(i => labels[i] != 0 && !Predicted(i)).OrderBy(i => images[i].Score).Select(i => (i, "FN")))
            .Concat(idx.Where(i => labels[i] != 0 && Predicted(i)).OrderBy(i => images[i].Score).Select(i => (i, "TP")))
            .Concat(idx.Where(i => labels[i] == 0 && !Predicted(i)).OrderByDescending(i => images[i].Score).Select(i => (i, "TN")))
            .ToList();
        var shown = o.GalleryPerClass > 0 ? ordered.Take(o.GalleryPerClass).ToList() : ordered;
        var rows = new Thumbnails.Row?[shown.Count];
        var errors = new string?[shown.Count];
        Parallel.For(0, shown.Count, k =>
        {
            try { rows[k] = Thumbnails.Render(images[shown[k].Item1], mapSize, o.ThumbnailSize, pixelThreshold); }
            catch (MambaADException e) { errors[k] = e.Message; }
        });
        int fp = ordered.Count(x => x.Item2 == "FP"), fn = ordered.Count(x => x.Item2 == "FN");
        sb.Append($"<h3>Gallery</h3><p class=\"note\">{fp} false positive(s), {fn} false negative(s); showing {shown.Count} of {ordered.Count} images, mistakes first. Overlay colours run from blue at 0 to red at twice the pixel threshold.</p>");
        sb.Append("<table class=\"gallery\"><thead><tr><th>outcome</th><th>image</th><th>ground truth</th><th>anomaly map</th><th>predicted mask</th></tr></thead><tbody>");
        int px = o.ThumbnailSize;
        for (int k = 0; k < shown.Count; k++)
        {
            var (i, outcome) = shown[k];
            var r = images[i];
            sb.Append($"<tr class=\"{outcome.ToLowerInvariant()}\"><td><span class=\"badge {outcome.ToLowerInvariant()}\">{outcome}</span><br>score {G(r.Score)}<br><span class=\"file\">{E(r.Sample.DefectType)}/{E(Path.GetFileName(r.Sample.ImagePath))}</span></td>");
            if (rows[k] is { } row)
            {
                sb.Append($"<td><img src=\"{row.Image}\" width=\"{px}\" height=\"{px}\" alt=\"image\"></td>");
                sb.Append(row.GroundTruth is { } gt ? $"<td><img src=\"{gt}\" width=\"{px}\" height=\"{px}\" alt=\"ground truth\"></td>" : "<td class=\"na\">no mask</td>");
                sb.Append($"<td><img src=\"{row.Overlay}\" width=\"{px}\" height=\"{px}\" alt=\"anomaly map\"></td><td><img src=\"{row.PredictedMask}\" width=\"{px}\" height=\"{px}\" alt=\"predicted mask\"></td>");
            }
            else sb.Append($"<td colspan=\"4\" class=\"na\">{E(errors[k] ?? "unreadable")}</td>");
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table>");
    }

    /// <summary>The evaluation's image label: max of the mask, or the folder's word when there is no mask (§12.6).</summary>
    private static int Label(ImageResult r) => r.Mask is null ? (r.Sample.IsFolderAnomalous ? 1 : 0) : r.Mask.Any(v => v != 0) ? 1 : 0;

    private static double[] Pick(double[] scores, int[] labels, int label) =>
        scores.Where((_, i) => (labels[i] != 0 ? 1 : 0) == label).ToArray();

    private static string ThresholdText(ReportOptions o) => o.Thresholds is { } t
        ? $"image {(t.Image is { } i ? G(i) : "per class, best F1")}, pixel {(t.Pixel is { } p ? G(p) : "= image")} ({t.Method})"
        : "none given: per class, the image threshold with the best F1; pixel threshold = image threshold";

    /// <summary>A pale red→green background for a metric in [0, 1] (50 and below red, 100 green).</summary>
    private static string Shade(double v)
    {
        double t = Math.Clamp((v - 0.5) / 0.5, 0, 1);
        return $"hsl({(120 * t).ToString("F0", CultureInfo.InvariantCulture)} 60% 90%)";
    }

    private static string Id(string className) =>
        "class-" + new string(className.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-').ToArray());

    /// <summary>×100 with one decimal; a tiny negative (AU-PRO's rescaling can give −1e-17) shows as 0.0, not −0.0.</summary>
    private static string Percent(double v)
    {
        double d = Math.Round(100 * v, 1);
        return (d == 0 ? 0 : d).ToString("F1", CultureInfo.InvariantCulture);
    }

    private static string G(double v) => v.ToString("G5", CultureInfo.InvariantCulture);
    private static string E(string s) => WebUtility.HtmlEncode(s);

    private const string Css = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;color:#222;background:#fff}
        h1{margin:0 0 6px;font-size:24px}h2{margin:28px 0 8px;font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:14px 0 4px}
        dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0;font-size:13px;color:#444}dl.meta dt{font-weight:600}dl.meta dd{margin:0}
        nav{margin:10px 0;font-size:13px}nav a{color:#1f5fa8}
        table.metrics{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
        table.metrics th,table.metrics td{border:1px solid #ddd;padding:4px 8px;text-align:right}table.metrics th:first-child{text-align:left}
        table.metrics thead th{background:#f2f2f2}tr.mean th,tr.mean td{font-weight:700;border-top:2px solid #888}
        td.na{color:#999;text-align:center}.note{font-size:12px;color:#666;margin:4px 0}
        .charts{display:flex;flex-wrap:wrap;gap:10px}.charts svg{border:1px solid #eee;background:#fff;max-width:100%;height:auto}
        table.gallery{border-collapse:collapse;font-size:12px}table.gallery td,table.gallery th{padding:3px 6px;border-bottom:1px solid #eee;vertical-align:middle;text-align:center}
        table.gallery img{display:block;image-rendering:auto;border:1px solid #ccc}.file{color:#666;word-break:break-all}
        .badge{display:inline-block;padding:1px 7px;border-radius:9px;font-weight:700;color:#fff}.badge.fp{background:#d62728}.badge.fn{background:#9467bd}.badge.tp{background:#2ca02c}.badge.tn{background:#7f7f7f}
        .warnings li{color:#8a5a00}footer{margin:30px 0 10px;font-size:11px;color:#999}
        """;
}
