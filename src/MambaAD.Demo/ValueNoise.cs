namespace MambaAD.Demo;

/// <summary>
/// Smooth fractal value noise on the unit square: random values on coarse grids, smoothstep-interpolated, summed
/// over octaves with halving amplitude. Output roughly in [-1, 1]. Used for lighting and colour variation.
/// </summary>
internal sealed class ValueNoise
{
    private readonly int[] _cells;
    private readonly float[][] _grids;
    private readonly float[] _amps;

    public ValueNoise(Random rng, int cells, int octaves = 3)
    {
        _cells = new int[octaves]; _grids = new float[octaves][]; _amps = new float[octaves];
        float amp = 1f, total = 0f;
        for (int o = 0; o < octaves; o++, cells *= 2, amp *= 0.5f)
        {
            int n = cells + 1;
            var g = new float[n * n];
            for (int i = 0; i < g.Length; i++) g[i] = (float)(rng.NextDouble() * 2 - 1);
            _cells[o] = cells; _grids[o] = g; _amps[o] = amp;
            total += amp;
        }
        for (int o = 0; o < octaves; o++) _amps[o] /= total;
    }

    /// <summary>Noise at (u, v) in [0, 1]² (clamped outside).</summary>
    public float At(double u, double v)
    {
        float sum = 0f;
        u = Math.Clamp(u, 0, 1); v = Math.Clamp(v, 0, 1);
        for (int o = 0; o < _cells.Length; o++)
        {
            int cells = _cells[o];
            var g = _grids[o];
            float amp = _amps[o];
            double x = u * cells, y = v * cells;
            int x0 = Math.Min((int)x, cells - 1), y0 = Math.Min((int)y, cells - 1);
            float fx = Smooth((float)(x - x0)), fy = Smooth((float)(y - y0));
            int n = cells + 1;
            float a = g[y0 * n + x0], b = g[y0 * n + x0 + 1], c = g[(y0 + 1) * n + x0], d = g[(y0 + 1) * n + x0 + 1];
            sum += amp * (a + (b - a) * fx + (c - a) * fy + (a - b - c + d) * fx * fy);
        }
        return sum;
    }

    private static float Smooth(float t) => t * t * (3 - 2 * t);
}
