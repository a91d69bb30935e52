namespace MambaAD.Demo;

/// <summary>
/// "washer" (object): a brushed metal ring on a dark plain background with a soft cast shadow. Per image: centre,
/// radii, light direction, brightness and grain orientation jitter. Ring edges are antialiased by analytic coverage.
/// Defects are kept on the flat part of the ring.
/// </summary>
internal sealed class WasherPainter : ClassPainter
{
    public override string Name => "washer";
    public override IReadOnlyList<string> DefectTypes { get; } = [DefectPainter.Scratch, DefectPainter.Crack, DefectPainter.Stain];

    public override DefectRegion Paint(RenderBuffer buffer, Random rng)
    {
        int size = buffer.Size;
        double s = size / 256.0;
        double cx = size / 2.0 + rng.Uniform(-10, 10) * s, cy = size / 2.0 + rng.Uniform(-10, 10) * s;
        double outer = 0.36 * size * rng.Uniform(0.95, 1.05), inner = outer * rng.Uniform(0.40, 0.46);
        double lightAngle = (-135 + rng.Uniform(-15, 15)) * Math.PI / 180;
        double lx = Math.Cos(lightAngle), ly = Math.Sin(lightAngle);
        double rotation = rng.NextDouble() * 2 * Math.PI;
        double metal = 160 * rng.Uniform(0.92, 1.08);
        double bgR = 52 + rng.Uniform(-5, 5), bgG = 56 + rng.Uniform(-5, 5), bgB = 66 + rng.Uniform(-5, 5);
        var bgLight = new ValueNoise(rng, 2);
        var grain = new ValueNoise(rng, 24, 2);
        double shadowX = -lx * 6 * s, shadowY = -ly * 6 * s, bevel = 0.14 * (outer - inner);

        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double px = x + 0.5, py = y + 0.5;
                // background with soft shadow of the ring
                double sx = px - cx - shadowX, sy = py - cy - shadowY, sr = Math.Sqrt(sx * sx + sy * sy);
                double shadow = Clamp01((outer + 4 * s - sr) / (8 * s)) * Clamp01((sr - inner + 4 * s) / (8 * s));
                double bl = (1 + 0.10 * bgLight.At(px / size, py / size)) * (1 - 0.45 * shadow);
                double r = bgR * bl, g = bgG * bl, b = bgB * bl;

                double dx = px - cx, dy = py - cy, rho = Math.Sqrt(dx * dx + dy * dy);
                double cover = Clamp01(outer - rho + 0.5) * Clamp01(rho - inner + 0.5);
                if (cover > 0)
                {
                    double nx = rho > 0 ? dx / rho : 1, ny = rho > 0 ? dy / rho : 0;
                    double radialLight = nx * lx + ny * ly; // >0: this side of the ring faces the light
                    double t = (rho - inner) / (outer - inner);
                    double slope = 0;
                    if (rho - inner < bevel) slope = -(1 - (rho - inner) / bevel);       // inner bevel faces the hole
                    else if (outer - rho < bevel) slope = 1 - (outer - rho) / bevel;     // outer bevel faces outwards
                    double theta = Math.Atan2(dy, dx) + rotation;
                    double aniso = 0.16 * Math.Cos(2 * (Math.Atan2(dy, dx) - lightAngle));  // brushed-metal highlight
                    double brushed = 0.05 * Math.Sin(rho * 1.7 / s) * grain.At(0.5 + 0.4 * Math.Cos(theta), 0.5 + 0.4 * Math.Sin(theta))
                                     + 0.04 * grain.At(t, (theta / (2 * Math.PI)) % 1 + 0.0);
                    double m = metal * (1 + aniso + brushed + 0.5 * slope * radialLight);
                    r += (m * 0.98 - r) * cover; g += (m - g) * cover; b += (m * 1.04 - b) * cover;
                }
                buffer.Set(x, y, (float)r, (float)g, (float)b);
            }

        double lo = inner + bevel + 2 * s, hi = outer - bevel - 2 * s;
        return new DefectRegion((x, y) =>
        {
            double d = Math.Sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
            return d >= lo && d <= hi;
        }, cx - hi, cy - hi, cx + hi, cy + hi);
    }
}
