using MambaAD.Imaging;

namespace MambaAD.Demo;

/// <summary>
/// Draws one defect into a rendered scene and returns its coverage layer.
/// </summary>
/// <remarks>
/// <para>Each defect is a geometric shape (a thick polyline or a radius-modulated disc) evaluated at pixel centres
/// without antialiasing: a pixel is either outside the shape (opacity exactly 0) or inside with an opacity of at
/// least about 0.45, chosen by the defect type from the pixel's normalised depth in the shape. The colour is blended
/// with that opacity, and the ground-truth mask is <c>opacity &gt; 0</c>: the very same per-pixel test that decides
/// whether a pixel is touched. So no pixel outside the mask changes, and every mask pixel is blended towards a colour
/// chosen far from the local background (so it visibly changes).</para>
/// <para>Shapes are clipped to the class's <see cref="DefectRegion"/> (defects stay on the object) and redrawn with
/// new geometry until they cover between a type-dependent minimum and 8 % of the image and still cover pixels after
/// the official mask preprocessing (256² bilinear resize, &gt; 0.5).</para>
/// </remarks>
internal static class DefectPainter
{
    public const string Scratch = "scratch", Hole = "hole", Stain = "stain", Crack = "crack";

    /// <summary>All defect types.</summary>
    public static IReadOnlyList<string> All { get; } = [Scratch, Hole, Stain, Crack];

    private const double MaxFraction = 0.08;
    private const int MinPixelsAt256 = 120;

    /// <summary>Paints a <paramref name="type"/> defect into <paramref name="buffer"/>; returns the opacity layer (size², 0 outside the defect).</summary>
    public static float[] Paint(RenderBuffer buffer, string type, DefectRegion region, Random rng)
    {
        int size = buffer.Size;
        double s = size / 256.0;
        double minFraction = type is Scratch or Crack ? 0.0025 : type == Hole ? 0.004 : 0.009;
        for (int attempt = 0; ; attempt++)
        {
            var (cx, cy) = Centre(region, rng);
            IShape shape = type switch
            {
                Scratch => ScratchShape(cx, cy, s, rng),
                Crack => CrackShape(cx, cy, s, rng),
                Hole => Blob.Create(cx, cy, rng.Uniform(10, 19) * s, 0.06, rng),
                Stain => Blob.Create(cx, cy, rng.Uniform(15, 30) * s, 0.22, rng),
                _ => throw new ArgumentException($"unknown defect type {type}", nameof(type)),
            };
            var depth = Rasterize(shape, region, size, out int count);
            double fraction = count / (double)(size * size);
            bool ok = fraction >= minFraction && fraction <= MaxFraction && SurvivesPreprocessing(depth, size);
            if (!ok && attempt < 200) continue;
            if (count == 0) throw new InvalidOperationException($"could not place a {type} defect in the region");
            return Colourise(buffer, type, depth, rng);
        }
    }

    private static (double X, double Y) Centre(DefectRegion region, Random rng)
    {
        for (int i = 0; ; i++)
        {
            double x = rng.Uniform(region.MinX, region.MaxX), y = rng.Uniform(region.MinY, region.MaxY);
            if (region.Contains(x, y) || i > 1000) return (x, y);
        }
    }

    /// <summary>Normalised depth per pixel: −1 outside the shape/region, else in [0, 1] (0 = core, 1 = outline).</summary>
    private static float[] Rasterize(IShape shape, DefectRegion region, int size, out int count)
    {
        var depth = new float[size * size];
        Array.Fill(depth, -1f);
        count = 0;
        var (x0, y0, x1, y1) = shape.Bounds;
        for (int y = Math.Max(0, (int)Math.Floor(y0)); y <= Math.Min(size - 1, (int)Math.Ceiling(y1)); y++)
            for (int x = Math.Max(0, (int)Math.Floor(x0)); x <= Math.Min(size - 1, (int)Math.Ceiling(x1)); x++)
            {
                double px = x + 0.5, py = y + 0.5;
                if (!region.Contains(px, py)) continue;
                double t = shape.Depth(px, py);
                if (t <= 1) { depth[y * size + x] = (float)Math.Max(t, 0); count++; }
            }
        return depth;
    }

    private static bool SurvivesPreprocessing(float[] depth, int size)
    {
        var grey = new byte[depth.Length];
        for (int i = 0; i < grey.Length; i++) grey[i] = depth[i] >= 0 ? (byte)255 : (byte)0;
        var bin = Preprocess.Binarize(Preprocess.MaskResized(grey, size, size, 256));
        int n = 0;
        foreach (var b in bin) n += b;
        return n >= MinPixelsAt256;
    }

    private static float[] Colourise(RenderBuffer buffer, string type, float[] depth, Random rng)
    {
        int size = buffer.Size;
        // mean colour under the defect, to pick a colour that contrasts with it
        double mr = 0, mg = 0, mb = 0; int n = 0;
        for (int i = 0; i < depth.Length; i++)
            if (depth[i] >= 0) { mr += buffer.Rgb[3 * i]; mg += buffer.Rgb[3 * i + 1]; mb += buffer.Rgb[3 * i + 2]; n++; }
        mr /= n; mg /= n; mb /= n;
        double luma = 0.299 * mr + 0.587 * mg + 0.114 * mb;

        (double R, double G, double B) colour;
        Func<float, float> opacity;
        switch (type)
        {
            case Scratch:
                colour = luma < 130 ? (238, 236, 228) : (28, 26, 24);
                opacity = t => 0.95f - 0.35f * t * t;
                break;
            case Crack:
                colour = (20, 16, 14);
                opacity = t => 0.95f - 0.25f * t;
                break;
            case Hole:
                colour = (12 + rng.Uniform(0, 10), 10 + rng.Uniform(0, 8), 8 + rng.Uniform(0, 6));
                opacity = t => t < 0.65f ? 1f : 1f - 0.5f * (t - 0.65f) / 0.35f; // dark core, soft rim down to 0.5
                break;
            default: // stain: a semi-transparent discolouration far from the local colour, darker at its rim
                (double, double, double)[] palette = [(96, 58, 18), (40, 72, 160), (150, 165, 40), (165, 35, 45), (35, 35, 35), (230, 225, 150)];
                var far = palette.Where(p => Dist(p, (mr, mg, mb)) >= 120).ToList();
                colour = far.Count > 0 ? far[rng.Next(far.Count)] : palette.MaxBy(p => Dist(p, (mr, mg, mb)));
                var blotch = new ValueNoise(rng, 6, 2);
                float baseAlpha = (float)rng.Uniform(0.55, 0.7);
                opacity = t => baseAlpha + (t > 0.8f ? 0.15f : 0f);
                // per-pixel variation inside the stain, never below 0.45 so each pixel changes visibly
                var alphaNoise = new float[depth.Length];
                for (int i = 0; i < depth.Length; i++)
                    if (depth[i] >= 0) alphaNoise[i] = 0.1f * blotch.At((i % size) / (double)size, (i / size) / (double)size);
                return Apply(buffer, depth, colour, t => opacity(t), alphaNoise);
        }
        return Apply(buffer, depth, colour, opacity, null);
    }

    private static float[] Apply(RenderBuffer buffer, float[] depth, (double R, double G, double B) colour,
        Func<float, float> opacity, float[]? alphaNoise)
    {
        int size = buffer.Size;
        var alpha = new float[depth.Length];
        for (int i = 0; i < depth.Length; i++)
        {
            if (depth[i] < 0) continue;
            float a = Math.Clamp(opacity(depth[i]) + (alphaNoise?[i] ?? 0f), 0.45f, 1f);
            alpha[i] = a;
            buffer.Blend(i % size, i / size, (float)colour.R, (float)colour.G, (float)colour.B, a);
        }
        return alpha;
    }

    private static double Dist((double, double, double) a, (double, double, double) b) =>
        Math.Sqrt((a.Item1 - b.Item1) * (a.Item1 - b.Item1) + (a.Item2 - b.Item2) * (a.Item2 - b.Item2) + (a.Item3 - b.Item3) * (a.Item3 - b.Item3));

    private static Polyline ScratchShape(double cx, double cy, double s, Random rng)
    {
        double len = rng.Uniform(60, 130) * s, dir = rng.NextDouble() * Math.PI;
        double dx = Math.Cos(dir), dy = Math.Sin(dir), nx = -dy, ny = dx;
        double b1 = rng.Uniform(-0.35, 0.35) * len, b2 = rng.Uniform(-0.35, 0.35) * len;
        (double X, double Y) p0 = (cx - dx * len / 2, cy - dy * len / 2), p3 = (cx + dx * len / 2, cy + dy * len / 2);
        (double X, double Y) p1 = (cx - dx * len / 6 + nx * b1, cy - dy * len / 6 + ny * b1);
        (double X, double Y) p2 = (cx + dx * len / 6 + nx * b2, cy + dy * len / 6 + ny * b2);
        double hw = rng.Uniform(1.5, 2.2) * s;
        var pts = new List<(double X, double Y, double Hw)>();
        const int n = 40;
        for (int i = 0; i <= n; i++)
        {
            double t = i / (double)n, u = 1 - t;
            double x = u * u * u * p0.X + 3 * u * u * t * p1.X + 3 * u * t * t * p2.X + t * t * t * p3.X;
            double y = u * u * u * p0.Y + 3 * u * u * t * p1.Y + 3 * u * t * t * p2.Y + t * t * t * p3.Y;
            double taper = 0.55 + 0.45 * Math.Sin(Math.PI * t);
            pts.Add((x, y, Math.Max(hw * taper, 0.8 * s)));
        }
        return new Polyline([pts]);
    }

    private static Polyline CrackShape(double cx, double cy, double s, Random rng)
    {
        double dir = rng.NextDouble() * 2 * Math.PI, len = rng.Uniform(70, 130) * s;
        var strokes = new List<List<(double X, double Y, double Hw)>>();
        var main = new List<(double X, double Y, double Hw)>();
        // walk both ways from the centre, the centre being the widest point
        foreach (int side in new[] { -1, 1 })
        {
            var half = Walk(cx, cy, dir + (side < 0 ? Math.PI : 0), len / 2, 1.8 * s, 0.8 * s, s, rng);
            if (side < 0) { half.Reverse(); main.AddRange(half); }
            else main.AddRange(half.Skip(1));
        }
        strokes.Add(main);
        int branches = rng.Next(1, 4);
        for (int b = 0; b < branches; b++)
        {
            var from = main[rng.Next(main.Count / 5, main.Count * 4 / 5)];
            double bdir = dir + (rng.Next(2) == 0 ? 1 : -1) * rng.Uniform(0.5, 1.1) + (rng.Next(2) == 0 ? 0 : Math.PI);
            strokes.Add(Walk(from.X, from.Y, bdir, len * rng.Uniform(0.25, 0.45), Math.Min(from.Hw, 1.3 * s), 0.75 * s, s, rng));
        }
        return new Polyline(strokes);
    }

    /// <summary>A jagged walk: short segments whose heading jitters around <paramref name="dir"/>; width tapers.</summary>
    private static List<(double X, double Y, double Hw)> Walk(double x, double y, double dir, double len,
        double hwStart, double hwEnd, double s, Random rng)
    {
        var pts = new List<(double X, double Y, double Hw)> { (x, y, hwStart) };
        double walked = 0;
        while (walked < len)
        {
            double step = rng.Uniform(4, 8) * s, heading = dir + rng.Uniform(-0.6, 0.6);
            x += Math.Cos(heading) * step; y += Math.Sin(heading) * step; walked += step;
            pts.Add((x, y, hwStart + (hwEnd - hwStart) * Math.Min(walked / len, 1)));
        }
        return pts;
    }

    private interface IShape
    {
        (double X0, double Y0, double X1, double Y1) Bounds { get; }

        /// <summary>Normalised depth of (x, y): ≤ 1 inside (0 at the core), &gt; 1 outside.</summary>
        double Depth(double x, double y);
    }

    /// <summary>Thick polylines whose half-width is interpolated along each segment.</summary>
    private sealed class Polyline : IShape
    {
        /// <summary>Lines stay at least 1.5 px wide however small the image, so they always cover whole pixel centres.</summary>
        private const double MinHalfWidth = 0.75;

        // per segment: ax, ay, bx, by, hwA, hwB and its bounding box grown by the larger half-width
        private readonly double[] _seg;
        private readonly int _count;
        public (double X0, double Y0, double X1, double Y1) Bounds { get; }

        public Polyline(List<List<(double X, double Y, double Hw)>> strokes)
        {
            var seg = new List<double>();
            foreach (var pts in strokes)
                for (int i = 0; i + 1 < pts.Count; i++)
                {
                    var (ax, ay, ha) = pts[i];
                    var (bx, by, hb) = pts[i + 1];
                    ha = Math.Max(ha, MinHalfWidth); hb = Math.Max(hb, MinHalfWidth);
                    double h = Math.Max(ha, hb);
                    seg.AddRange([ax, ay, bx, by, ha, hb, Math.Min(ax, bx) - h, Math.Min(ay, by) - h, Math.Max(ax, bx) + h, Math.Max(ay, by) + h]);
                }
            _seg = [.. seg];
            _count = seg.Count / 10;
            var all = strokes.SelectMany(p => p).ToList();
            Bounds = (all.Min(p => p.X) - 3 - all.Max(p => p.Hw), all.Min(p => p.Y) - 3 - all.Max(p => p.Hw), all.Max(p => p.X) + 3 + all.Max(p => p.Hw), all.Max(p => p.Y) + 3 + all.Max(p => p.Hw));
        }

        public double Depth(double x, double y)
        {
            double best = double.MaxValue;
            var g = _seg;
            for (int k = 0, o = 0; k < _count; k++, o += 10)
            {
                if (x < g[o + 6] || y < g[o + 7] || x > g[o + 8] || y > g[o + 9]) continue; // farther than the half-width
                double ax = g[o], ay = g[o + 1], vx = g[o + 2] - ax, vy = g[o + 3] - ay, l2 = vx * vx + vy * vy;
                double t = l2 > 0 ? Math.Clamp(((x - ax) * vx + (y - ay) * vy) / l2, 0, 1) : 0;
                double ex = ax + t * vx - x, ey = ay + t * vy - y;
                double d = Math.Sqrt(ex * ex + ey * ey) / (g[o + 4] + t * (g[o + 5] - g[o + 4]));
                if (d < best) best = d;
            }
            return best;
        }
    }

    /// <summary>A disc whose radius is modulated by a few random harmonics of the angle (irregular outline).</summary>
    private sealed class Blob : IShape
    {
        private readonly double _cx, _cy, _r;
        private readonly (double Amp, int K, double Phase)[] _harmonics;
        public (double X0, double Y0, double X1, double Y1) Bounds { get; }

        private Blob(double cx, double cy, double r, (double, int, double)[] harmonics)
        {
            _cx = cx; _cy = cy; _r = r; _harmonics = harmonics;
            double reach = r * (1 + harmonics.Sum(h => Math.Abs(h.Item1))) + 1;
            Bounds = (cx - reach, cy - reach, cx + reach, cy + reach);
        }

        public static Blob Create(double cx, double cy, double r, double irregularity, Random rng)
        {
            var h = new (double, int, double)[4];
            for (int k = 2; k <= 5; k++) h[k - 2] = (rng.Uniform(0.3, 1.0) * irregularity * 2 / k, k, rng.NextDouble() * 2 * Math.PI);
            return new Blob(cx, cy, r, h);
        }

        public double Depth(double x, double y)
        {
            double dx = x - _cx, dy = y - _cy, theta = Math.Atan2(dy, dx);
            double r = 1;
            foreach (var (amp, k, phase) in _harmonics) r += amp * Math.Sin(k * theta + phase);
            return Math.Sqrt(dx * dx + dy * dy) / (_r * Math.Max(r, 0.3));
        }
    }
}
