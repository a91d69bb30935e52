namespace MambaAD.Demo;

/// <summary>
/// "tile" (texture): a grid of glazed ceramic tiles separated by grout lines, with per-image pitch, offset, slight
/// rotation and colour, per-tile tone, rounded tile edges, glaze gradient, dark speckle and low-frequency lighting.
/// </summary>
internal sealed class TilePainter : ClassPainter
{
    public override string Name => "tile";
    public override IReadOnlyList<string> DefectTypes { get; } = [DefectPainter.Crack, DefectPainter.Stain, DefectPainter.Hole];

    public override DefectRegion Paint(RenderBuffer buffer, Random rng)
    {
        int size = buffer.Size;
        double s = size / 256.0;
        double angle = rng.Uniform(-1.5, 1.5) * Math.PI / 180, cos = Math.Cos(angle), sin = Math.Sin(angle);
        double pitch = 72 * s * rng.Uniform(0.92, 1.08), grout = 5 * s * rng.Uniform(0.85, 1.15), bevel = 3 * s;
        double ox = rng.NextDouble() * pitch, oy = rng.NextDouble() * pitch;
        double tr = 206 + rng.Uniform(-8, 8), tg = 200 + rng.Uniform(-8, 8), tb = 188 + rng.Uniform(-8, 8);
        double gr = 118 + rng.Uniform(-10, 10);
        var tileTone = new float[64];
        var glazeDir = new float[64];
        for (int i = 0; i < 64; i++) { tileTone[i] = (float)(rng.Gaussian() * 6); glazeDir[i] = (float)(rng.NextDouble() * 2 * Math.PI); }
        var light = new ValueNoise(rng, 3);

        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double px = x + 0.5, py = y + 0.5;
                double u = px * cos + py * sin + ox, v = -px * sin + py * cos + oy;
                int ci = (int)Math.Floor(u / pitch), cj = (int)Math.Floor(v / pitch);
                double fx = u - ci * pitch, fy = v - cj * pitch;
                double edge = Math.Min(Math.Min(fx, pitch - fx), Math.Min(fy, pitch - fy)); // distance to the tile border
                int id = ((ci * 7 + cj * 13) % 64 + 64) % 64;
                double g = glazeDir[id];
                double glaze = 5 * (((fx / pitch) - 0.5) * Math.Cos(g) + ((fy / pitch) - 0.5) * Math.Sin(g));
                double tile = tileTone[id] + glaze;
                double inEdge = edge - grout / 2;
                if (inEdge < bevel) tile -= 22 * Math.Pow(1 - Math.Max(inEdge, 0) / bevel, 2);
                double cover = Clamp01(inEdge + 0.5);
                double l = 1 + 0.08 * light.At(px / size, py / size);
                double r = (tr + tile) * cover + gr * (1 - cover), gg = (tg + tile) * cover + (gr - 3) * (1 - cover), b = (tb + tile) * cover + (gr - 8) * (1 - cover);
                buffer.Set(x, y, (float)(r * l), (float)(gg * l), (float)(b * l));
            }

        int dots = (int)(700 * s * s * rng.Uniform(0.8, 1.2));
        for (int k = 0; k < dots; k++)
        {
            double cx = rng.NextDouble() * size, cy = rng.NextDouble() * size, rad = rng.Uniform(0.5, 1.4) * s;
            float a = (float)rng.Uniform(0.35, 0.8), c = (float)rng.Uniform(60, 110);
            for (int y = Math.Max(0, (int)(cy - rad - 1)); y <= Math.Min(size - 1, (int)(cy + rad + 1)); y++)
                for (int x = Math.Max(0, (int)(cx - rad - 1)); x <= Math.Min(size - 1, (int)(cx + rad + 1)); x++)
                {
                    double d = Math.Sqrt((x + 0.5 - cx) * (x + 0.5 - cx) + (y + 0.5 - cy) * (y + 0.5 - cy));
                    float cov = Clamp01(rad - d + 0.5);
                    if (cov > 0) buffer.Blend(x, y, c, c * 0.95f, c * 0.85f, a * cov);
                }
        }
        return DefectRegion.Whole(size, 0.15 * size);
    }
}
