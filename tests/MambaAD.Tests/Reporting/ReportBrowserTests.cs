using System.Text.RegularExpressions;
using MambaAD.Imaging;
using MambaAD.Reporting;

namespace MambaAD.Tests.Reporting;

/// <summary>
/// Opens the report in a real browser (headless chromium): what is checked is what renders — decoded gallery
/// pictures, laid-out SVG curves, table rows — and a screenshot that is not blank.
/// </summary>
public class ReportBrowserTests(ReportFixture f) : IClassFixture<ReportFixture>
{
    // Appended to a copy of the report only (the report itself has no script). It measures the rendered page and
    // leaves the numbers as attributes on <body>, which --dump-dom prints.
    private const string Probe = """
        <script>
        window.addEventListener('load', () => {
          const b = document.body.dataset;
          const imgs = [...document.querySelectorAll('table.gallery img')];
          b.imgs = imgs.length;
          b.imgsDecoded = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length;
          const paths = [...document.querySelectorAll('svg.chart path.series')];
          b.paths = paths.length;
          b.pathsDrawn = paths.filter(p => p.getTotalLength() > 10 && p.getBoundingClientRect().width > 10).length;
          b.charts = [...document.querySelectorAll('svg.chart')].filter(s => s.getBoundingClientRect().height > 100).length;
          b.metricRows = document.querySelectorAll('#metrics tbody tr').length;
          b.metricCells = [...document.querySelectorAll('#metrics tbody td')].filter(td => td.offsetWidth > 0).length;
          b.bars = document.querySelectorAll('svg.histogram rect.bar').length;
          b.probed = 'yes';
        });
        </script>
        """;

    [ChromiumFact]
    public void Report_renders_tables_curves_and_gallery_in_headless_chromium()
    {
        var report = f.P("report.html");
        HtmlReport.Write(report, f.Report, new ReportOptions(Title: "browser check"));
        var probed = f.P("probed.html");
        File.WriteAllText(probed, File.ReadAllText(report).Replace("</body>", Probe + "</body>"));

        var dom = Chromium.Run(probed, "--virtual-time-budget=10000", "--dump-dom");
        var body = Regex.Match(dom, "<body([^>]*)>").Groups[1].Value;
        int Attr(string name) => int.Parse(Regex.Match(body, $"data-{name}=\"(\\d+)\"").Groups[1].Value);
        Assert.Contains("data-probed=\"yes\"", body);
        int classes = f.Report.Result.Classes.Count, images = f.Report.Images.Count;
        Assert.Equal(4 * images, Attr("imgs"));
        Assert.Equal(4 * images, Attr("imgs-decoded"));
        Assert.Equal(4 * classes, Attr("paths"));
        Assert.Equal(4 * classes, Attr("paths-drawn"));
        Assert.Equal(3 * classes, Attr("charts"));
        Assert.Equal(classes + 1, Attr("metric-rows"));
        Assert.Equal(8 * (classes + 1), Attr("metric-cells"));
        Assert.True(Attr("bars") > 0);

        // The screenshot of the unmodified report: mostly white page, but with plenty of non-white pixels
        // (table shading, curves, thumbnails) and more than a handful of distinct colours.
        var png = f.P("report.png");
        Chromium.Run(report, "--window-size=1200,1400", $"--screenshot={png}");
        // To look at them: MAMBAAD_TEST_ARTIFACTS=<dir> keeps the report and its screenshot.
        if (Environment.GetEnvironmentVariable("MAMBAAD_TEST_ARTIFACTS") is { Length: > 0 } keep)
        {
            Directory.CreateDirectory(keep);
            File.Copy(report, Path.Combine(keep, "report.html"), true);
            File.Copy(png, Path.Combine(keep, "report.png"), true);
        }
        var shot = ImageDecoder.DecodeRgb(png);
        Assert.Equal(1200, shot.Width);
        int nonWhite = 0;
        var colours = new HashSet<int>();
        for (int i = 0; i < shot.Hwc.Length; i += 3)
        {
            int c = shot.Hwc[i] << 16 | shot.Hwc[i + 1] << 8 | shot.Hwc[i + 2];
            if (c != 0xFFFFFF) nonWhite++;
            colours.Add(c);
        }
        Assert.True(nonWhite > shot.Width * shot.Height / 50, $"screenshot nearly blank: {nonWhite} non-white pixels");
        Assert.True(colours.Count > 200, $"screenshot has only {colours.Count} colours");
    }
}
