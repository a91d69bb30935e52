using System.Globalization;
using System.Net;
using System.Text;

namespace MambaAD.Reporting;

/// <summary>
/// Small inline SVG charts (line charts on the unit square, histograms): self-contained, crisp at any zoom, and a
/// few kilobytes each. Series are polylines thinned to at most <see cref="MaxPoints"/> points.
/// </summary>
internal static class SvgChart
{
    public const int MaxPoints = 400;
    private const int Width = 340, Height = 280, Left = 46, Right = 12, Top = 40, Bottom = 40;
    private const int PlotW = Width - Left - Right, PlotH = Height - Top - Bottom;

    /// <summary>A series: name (shown in the legend), colour and points.</summary>
    internal sealed record Series(string Name, string Colour, double[] X, double[] Y);

    /// <summary>A line chart with both axes on [0, 1]; <paramref name="diagonal"/> draws the chance line of a ROC plot.</summary>
    public static string Lines(string kind, string title, string xLabel, string yLabel, IReadOnlyList<Series> series, bool diagonal)
    {
        var sb = Open(kind, title);
        Axes(sb, xLabel, yLabel, 0, 1);
        if (diagonal) sb.Append($"<line class=\"chance\" x1=\"{X(0)}\" y1=\"{Y(0)}\" x2=\"{X(1)}\" y2=\"{Y(1)}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>");
        if (series.Count == 0)
            sb.Append($"<text x=\"{X(0.5)}\" y=\"{Y(0.5)}\" text-anchor=\"middle\" fill=\"#888\">not available (one label only)</text>");
        for (int s = 0; s < series.Count; s++)
        {
            var (xs, ys) = Thin(series[s].X, series[s].Y);
            sb.Append($"<path class=\"series\" fill=\"none\" stroke=\"{series[s].Colour}\" stroke-width=\"2\" stroke-linejoin=\"round\" d=\"");
            for (int i = 0; i < xs.Length; i++) sb.Append(i == 0 ? 'M' : 'L').Append(F(X(xs[i]))).Append(',').Append(F(Y(ys[i])));
            sb.Append("\"/>");
            Legend(sb, s, series[s].Name, series[s].Colour);
        }
        return sb.Append("</svg>").ToString();
    }

    /// <summary>
    /// Overlaid histograms of normal and anomalous image scores (20 bins over their joint range) with the threshold
    /// as a dashed vertical line.
    /// </summary>
    public static string ScoreHistogram(string title, IReadOnlyList<double> normal, IReadOnlyList<double> anomalous, double threshold)
    {
        const int bins = 20;
        var all = normal.Concat(anomalous).Append(threshold).ToArray();
        double lo = all.Min(), hi = all.Max();
        if (hi <= lo) hi = lo + 1e-6;
        double pad = (hi - lo) * 0.02;
        lo -= pad; hi += pad;
        int[] Count(IReadOnlyList<double> v)
        {
            var c = new int[bins];
            foreach (var x in v) c[Math.Clamp((int)((x - lo) / (hi - lo) * bins), 0, bins - 1)]++;
            return c;
        }
        var cn = Count(normal);
        var ca = Count(anomalous);
        int top = Math.Max(1, Math.Max(cn.Max(), ca.Max()));
        var sb = Open("histogram", title);
        Axes(sb, "image score", "images", lo, hi, top);
        double bw = (double)PlotW / bins;
        foreach (var (counts, colour, cls) in new[] { (cn, "#1f77b4", "normal"), (ca, "#ff7f0e", "anomalous") })
            for (int b = 0; b < bins; b++)
            {
                if (counts[b] == 0) continue;
                double h = (double)counts[b] / top * PlotH;
                sb.Append($"<rect class=\"bar {cls}\" x=\"{F(Left + b * bw + 0.5)}\" y=\"{F(Top + PlotH - h)}\" width=\"{F(bw - 1)}\" height=\"{F(h)}\" fill=\"{colour}\" fill-opacity=\"0.55\"><title>{cls}: {counts[b]}</title></rect>");
            }
        double tx = Left + (threshold - lo) / (hi - lo) * PlotW;
        sb.Append($"<line class=\"threshold\" x1=\"{F(tx)}\" y1=\"{Top}\" x2=\"{F(tx)}\" y2=\"{Top + PlotH}\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>");
        sb.Append($"<text x=\"{F(tx + 3)}\" y=\"{Top + 11}\" font-size=\"10\" fill=\"#d62728\">threshold {threshold.ToString("G4", CultureInfo.InvariantCulture)}</text>");
        Legend(sb, 0, $"normal ({normal.Count})", "#1f77b4", square: true);
        Legend(sb, 1, $"anomalous ({anomalous.Count})", "#ff7f0e", square: true);
        return sb.Append("</svg>").ToString();
    }

    private static StringBuilder Open(string kind, string title) =>
        new StringBuilder($"<svg class=\"chart {kind}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" role=\"img\" font-family=\"system-ui,sans-serif\" font-size=\"11\">")
            .Append($"<title>{WebUtility.HtmlEncode(title)}</title><text x=\"{Width / 2}\" y=\"16\" text-anchor=\"middle\" font-weight=\"600\" font-size=\"12\">{WebUtility.HtmlEncode(title)}</text>");

    private static void Axes(StringBuilder sb, string xLabel, string yLabel, double xLo, double xHi, int? yCount = null)
    {
        sb.Append($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{PlotW}\" height=\"{PlotH}\" fill=\"#fafafa\" stroke=\"#999\"/>");
        for (int i = 0; i <= 5; i++)
        {
            double t = i / 5.0;
            double gx = Left + t * PlotW, gy = Top + PlotH - t * PlotH;
            if (i > 0 && i < 5)
                sb.Append($"<line x1=\"{F(gx)}\" y1=\"{Top}\" x2=\"{F(gx)}\" y2=\"{Top + PlotH}\" stroke=\"#e5e5e5\"/><line x1=\"{Left}\" y1=\"{F(gy)}\" x2=\"{Left + PlotW}\" y2=\"{F(gy)}\" stroke=\"#e5e5e5\"/>");
            var xv = (xLo + t * (xHi - xLo)).ToString(xHi - xLo >= 1 ? "0.#" : "G3", CultureInfo.InvariantCulture);
            sb.Append($"<text x=\"{F(gx)}\" y=\"{Top + PlotH + 14}\" text-anchor=\"middle\" fill=\"#444\">{xv}</text>");
            var yv = yCount is { } c ? (t * c).ToString("0.#", CultureInfo.InvariantCulture) : t.ToString("0.0", CultureInfo.InvariantCulture);
            sb.Append($"<text x=\"{Left - 5}\" y=\"{F(gy + 4)}\" text-anchor=\"end\" fill=\"#444\">{yv}</text>");
        }
        sb.Append($"<text x=\"{Left + PlotW / 2}\" y=\"{Height - 6}\" text-anchor=\"middle\">{WebUtility.HtmlEncode(xLabel)}</text>");
        sb.Append($"<text transform=\"translate(12 {Top + PlotH / 2}) rotate(-90)\" text-anchor=\"middle\">{WebUtility.HtmlEncode(yLabel)}</text>");
    }

    /// <summary>Legend entries in a row between the title and the plot, so they never cover data.</summary>
    private static void Legend(StringBuilder sb, int index, string name, string colour, bool square = false)
    {
        double x = Left + index * 130, y = 32;
        sb.Append(square
            ? $"<rect x=\"{F(x)}\" y=\"{F(y - 8)}\" width=\"14\" height=\"9\" fill=\"{colour}\" fill-opacity=\"0.55\"/>"
            : $"<line x1=\"{F(x)}\" y1=\"{F(y - 4)}\" x2=\"{F(x + 14)}\" y2=\"{F(y - 4)}\" stroke=\"{colour}\" stroke-width=\"2\"/>");
        sb.Append($"<text x=\"{F(x + 18)}\" y=\"{F(y)}\">{WebUtility.HtmlEncode(name)}</text>");
    }

    /// <summary>Keeps at most <see cref="MaxPoints"/> points, always the first and last (curve ends matter).</summary>
    private static (double[] X, double[] Y) Thin(double[] x, double[] y)
    {
        if (x.Length <= MaxPoints) return (x, y);
        var idx = Enumerable.Range(0, MaxPoints).Select(i => (int)Math.Round((double)i * (x.Length - 1) / (MaxPoints - 1))).Distinct().ToArray();
        return (idx.Select(i => x[i]).ToArray(), idx.Select(i => y[i]).ToArray());
    }

    private static double X(double v) => Left + v * PlotW;
    private static double Y(double v) => Top + PlotH - v * PlotH;
    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
}
