using System.Text.RegularExpressions;
using MambaAD.Checkpoints;
using MambaAD.Evaluation;
using MambaAD.Reporting;

namespace MambaAD.Tests.Reporting;

public class HtmlReportTests(ReportFixture f) : IClassFixture<ReportFixture>
{
    private static int Count(string html, string pattern) => Regex.Matches(html, pattern).Count;

    [Fact]
    public void Report_has_metrics_table_charts_and_gallery_for_every_class()
    {
        var html = HtmlReport.Build(f.Report);
        int classes = f.Report.Result.Classes.Count;
        Assert.Equal(2, classes);
        Assert.StartsWith("<!DOCTYPE html>", html);
        // One row per class plus the mean; eight metric columns.
        var table = Regex.Match(html, "<table id=\"metrics\".*?</table>", RegexOptions.Singleline).Value;
        Assert.Equal(classes + 1, Count(table, "<tr") - 1);
        Assert.Contains("<tr class=\"mean\">", table);
        foreach (var n in new[] { "I-AUROC", "P-AP", "AU-PRO", "mAD" }) Assert.Contains($"<th>{n}</th>", table);
        // Per class: ROC, PR and histogram; ROC and PR each with an image and a pixel curve.
        Assert.Equal(classes, Count(html, "<svg class=\"chart roc\""));
        Assert.Equal(classes, Count(html, "<svg class=\"chart pr\""));
        Assert.Equal(classes, Count(html, "<svg class=\"chart histogram\""));
        Assert.Equal(4 * classes, Count(html, "<path class=\"series\""));
        Assert.Equal(classes, Count(html, "<line class=\"threshold\""));
        // Every test image in the gallery (fewer than 24 per class), four pictures each.
        Assert.Equal(f.Report.Images.Count, Count(html, "<tr class=\"(fp|fn|tp|tn)\">"));
        Assert.Equal(4 * f.Report.Images.Count, Count(html, "<img src=\"data:image/"));
        // Self-contained: nothing fetched from anywhere.
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", html);
        Assert.DoesNotContain("<script", html);
    }

    [Fact]
    public void Gallery_lists_false_positives_then_false_negatives_first_and_respects_the_row_limit()
    {
        // A threshold at the median score guarantees mistakes of both kinds on noise maps.
        var scores = f.Report.Images.Select(r => r.Score).Order().ToArray();
        double median = scores[scores.Length / 2];
        var html = HtmlReport.Build(f.Report, new ReportOptions(Thresholds: new Thresholds(median, median, "test")));
        foreach (Match section in Regex.Matches(html, "<table class=\"gallery\">.*?</table>", RegexOptions.Singleline))
        {
            var outcomes = Regex.Matches(section.Value, "<tr class=\"(fp|fn|tp|tn)\">").Select(m => m.Groups[1].Value).ToList();
            var rank = outcomes.Select(o => Array.IndexOf(["fp", "fn", "tp", "tn"], o)).ToList();
            Assert.Equal(rank.Order(), rank);
            // Within false positives, the highest score first.
            var fpScores = Regex.Matches(section.Value, "badge fp\">FP</span><br>score ([^<]+)<").Select(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(fpScores.OrderDescending(), fpScores);
        }
        Assert.Contains("badge fp", html);
        Assert.Contains("badge fn", html);

        var limited = HtmlReport.Build(f.Report, new ReportOptions(GalleryPerClass: 2));
        Assert.Equal(2 * f.Report.Result.Classes.Count, Count(limited, "<tr class=\"(fp|fn|tp|tn)\">"));
    }

    [Fact]
    public void Write_is_atomic_and_escapes_metadata()
    {
        var path = f.P("escaped.html");
        HtmlReport.Write(path, f.Report, new ReportOptions(Title: "a <b> & c", Metadata: [new("checkpoint", "<script>x</script>")], GalleryPerClass: 1));
        var html = File.ReadAllText(path);
        Assert.Contains("a &lt;b&gt; &amp; c", html);
        Assert.DoesNotContain("<script>", html);
        Assert.Empty(Directory.GetFiles(f.Dir, "*.tmp*"));
    }

    [Fact]
    public void Image_curve_is_exact_on_a_hand_case()
    {
        // Scores 0.9(+) 0.8(−) 0.7(+) 0.1(−): thresholds fall through four distinct scores.
        // ROC: (0,0) (0,½) (½,½) (½,1) (1,1). PR (recall, precision): (0,1) (½,1) (½,½) (1,⅔) (1,½).
        var c = Curve.FromScores([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])!;
        Assert.Equal([0, 0, 0.5, 0.5, 1], c.Fpr);
        Assert.Equal([0, 0.5, 0.5, 1, 1], c.Tpr);
        Assert.Equal([0, 0.5, 0.5, 1, 1], c.Recall);
        Assert.Equal([1, 1, 0.5, 2.0 / 3, 0.5], c.Precision);
        Assert.Null(Curve.FromScores([1, 1], [0.2, 0.3]));
        // Best F1 is ⅘ at "the top three are anomalous": threshold halfway between 0.7 and 0.1.
        Assert.Equal(0.4, Metrics.F1MaxThreshold([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]), 12);
    }

    [Fact]
    public void Pixel_curve_of_separable_maps_reaches_the_top_left_corner()
    {
        var maps = new List<float[]> { new float[] { 0.1f, 0.2f, 0.9f, 0.8f } };
        var masks = new List<byte[]> { new byte[] { 0, 0, 1, 1 } };
        var c = Curve.FromPixels(maps, masks)!;
        Assert.Contains(c.Fpr.Zip(c.Tpr), p => p.First == 0 && p.Second == 1);
        Assert.Equal(1, c.Fpr[^1]);
        Assert.Equal(1, c.Tpr[^1]);
    }
}
