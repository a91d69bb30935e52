namespace MambaAD.Demo;

/// <summary>
/// "carpet" (texture): a plain weave of rounded threads, alternately over and under, with a per-image base colour,
/// slight rotation, thread pitch and phase, per-thread tone variation, a fibre ripple and low-frequency lighting.
/// </summary>
internal sealed class CarpetPainter : ClassPainter
{
    public override string Name => "carpet";
    public override IReadOnlyList<string> DefectTypes { get; } = [DefectPainter.Hole, DefectPainter.Stain, DefectPainter.Scratch];
    public override double NoiseSigma => 4.0;

    public override DefectRegion Paint(RenderBuffer buffer, Random rng)
    {
        int size = buffer.Size;
        double s = size / 256.0;
        double angle = rng.Uniform(-4, 4) * Math.PI / 180, cos = Math.Cos(angle), sin = Math.Sin(angle);
        double pitch = 9.0 * s * rng.Uniform(0.93, 1.07);
        double pu = rng.NextDouble() * 2, pv = rng.NextDouble() * 2;
        double bright = rng.Uniform(0.9, 1.1);
        double baseR = 148 + rng.Uniform(-8, 8), baseG = 112 + rng.Uniform(-8, 8), baseB = 84 + rng.Uniform(-6, 6);
        var threadTone = new float[256];
        for (int i = 0; i < threadTone.Length; i++) threadTone[i] = (float)(rng.Gaussian() * 0.05);
        var light = new ValueNoise(rng, 3);
        var hue = new ValueNoise(rng, 4, 2);
        const int lut = 1024; // profiles over one thread period, by table lookup (Pow/Sin per pixel are slow)
        var height = new float[lut];
        var bulge = new float[lut];
        var ripple = new float[lut];
        for (int i = 0; i < lut; i++)
        {
            double a = (i + 0.5) / lut;
            height[i] = (float)Math.Pow(Math.Sin(Math.PI * a), 0.6);
            bulge[i] = (float)(0.75 + 0.25 * Math.Sin(Math.PI * a));
            ripple[i] = (float)(0.06 * Math.Sin(2 * Math.PI * a));
        }
        int Lut(double a) => (int)((a - Math.Floor(a)) * lut) & (lut - 1);

        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double px = x + 0.5, py = y + 0.5;
                double u = (px * cos + py * sin) / pitch + pu, v = (-px * sin + py * cos) / pitch + pv;
                int ci = (int)Math.Floor(u), cj = (int)Math.Floor(v);
                double fu = u - ci, fv = v - cj;
                bool horizontalOnTop = ((ci + cj) & 1) == 0;
                // height of the top thread across its width, and a fibre ripple along it
                double across = horizontalOnTop ? fv : fu, along = horizontalOnTop ? fu : fv;
                double h = height[Lut(across)] * bulge[Lut(along)];
                double fibre = ripple[Lut(along * 3 + across * 1.5)];
                int thread = horizontalOnTop ? cj : ci;
                double tone = threadTone[thread & 255] + (horizontalOnTop ? 0.03 : -0.03);
                double shade = bright * (0.5 + 0.5 * h + fibre + tone) * (1 + 0.12 * light.At(px / size, py / size));
                double t = 0.06 * hue.At(px / size, py / size);
                buffer.Set(x, y, (float)(baseR * shade * (1 + t)), (float)(baseG * shade), (float)(baseB * shade * (1 - t)));
            }
        return DefectRegion.Whole(size, 0.15 * size);
    }
}
