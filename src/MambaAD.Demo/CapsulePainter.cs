namespace MambaAD.Demo;

/// <summary>
/// "capsule" (object): a two-tone gelatine capsule (ochre cap, ivory body) lying roughly horizontally on a light
/// background, with cylindrical shading, a specular band, a seam and a soft shadow. Per image: position, angle,
/// length, radius, cap colour and lighting jitter. Defects are kept on the capsule away from its outline.
/// </summary>
internal sealed class CapsulePainter : ClassPainter
{
    public override string Name => "capsule";
    public override IReadOnlyList<string> DefectTypes { get; } = [DefectPainter.Scratch, DefectPainter.Crack, DefectPainter.Hole];

    public override DefectRegion Paint(RenderBuffer buffer, Random rng)
    {
        int size = buffer.Size;
        double s = size / 256.0;
        double cx = size / 2.0 + rng.Uniform(-8, 8) * s, cy = size / 2.0 + rng.Uniform(-8, 8) * s;
        double angle = rng.Uniform(-6, 6) * Math.PI / 180, ca = Math.Cos(angle), sa = Math.Sin(angle);
        double half = 0.27 * size * rng.Uniform(0.95, 1.05), radius = 0.13 * size * rng.Uniform(0.95, 1.05);
        double seam = rng.Uniform(-0.08, 0.02) * half;
        double capR = 205 + rng.Uniform(-10, 10), capG = 118 + rng.Uniform(-10, 10), capB = 38 + rng.Uniform(-8, 8);
        double bodyR = 236 + rng.Uniform(-6, 4), bodyG = 230 + rng.Uniform(-6, 4), bodyB = 214 + rng.Uniform(-6, 6);
        double bg = 178 + rng.Uniform(-10, 10);
        var bgLight = new ValueNoise(rng, 2);
        double spec = rng.Uniform(-0.5, -0.35);

        double Dist(double px, double py, double ox, double oy, out double u, out double v)
        {
            double dx = px - cx - ox, dy = py - cy - oy;
            u = dx * ca + dy * sa; v = -dx * sa + dy * ca;
            double du = Math.Max(Math.Abs(u) - half, 0);
            return Math.Sqrt(du * du + v * v);
        }

        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double px = x + 0.5, py = y + 0.5;
                double sd = Dist(px, py, 3 * s, 7 * s, out _, out _);
                double shadow = Clamp01((radius + 5 * s - sd) / (12 * s));
                double l = (1 + 0.07 * bgLight.At(px / size, py / size) - 0.08 * (py / size - 0.5)) * (1 - 0.35 * shadow);
                double r = bg * l, g = bg * l, b = (bg - 8) * l;

                double d = Dist(px, py, 0, 0, out double u, out double v);
                double cover = Clamp01(radius - d + 0.5);
                if (cover > 0)
                {
                    double q = Math.Min(d / radius, 1);
                    double nz = Math.Sqrt(1 - q * q);
                    double across = Math.Abs(u) > half ? v / Math.Max(d, 1e-9) * q : v / radius;
                    double shade = 0.62 + 0.38 * nz;
                    double highlight = 70 * Math.Exp(-Math.Pow((across - spec) / 0.12, 2)) * nz;
                    bool cap = u < seam;
                    double seamDark = 1 - 0.25 * Clamp01(1.2 * s - Math.Abs(u - seam) + 0.5);
                    double cr = (cap ? capR : bodyR) * shade * seamDark + highlight;
                    double cg = (cap ? capG : bodyG) * shade * seamDark + highlight;
                    double cb = (cap ? capB : bodyB) * shade * seamDark + highlight;
                    r += (cr - r) * cover; g += (cg - g) * cover; b += (cb - b) * cover;
                }
                buffer.Set(x, y, (float)r, (float)g, (float)b);
            }

        double inside = radius - 5 * s, reach = half + inside;
        return new DefectRegion((x, y) => Dist(x, y, 0, 0, out _, out _) <= inside,
            cx - reach, cy - reach, cx + reach, cy + reach);
    }
}
