namespace MambaAD.Demo;

/// <summary>
/// Smooth fractal value noise on the unit square: random values on coarse grids, smoothstep-interpolated, summed
/// over octaves with halving amplitude. Output roughly in [-1, 1]. Used for lighting and colour variation.
/// </summary>
internal sealed class ValueNoise
{
    private readonly List<(int N, float[] Grid, float Amp)> _octaves = [];
    private readonly float _norm;

    public ValueNoise(Random rng, int cells, int octaves = 3)
    {
        float amp = 1f, total = 0f;
        for (int o = 0; o < octaves; o++, cells *= 2, amp *= 0.5f)
        {
            int n = cells + 1;
            var g = new float[n * n];
            for (int i = 0; i < g.Length; i++) g[i] = (float)(rng.NextDouble() * 2 - 1);
            _octaves.Add((cells, g, amp));
            total += amp;
        }
        _norm = 1f / total;
    }

    /// <summary>Noise at (u, v) in [0, 1]² (clamped outside).</summary>
    public float At(double u, double v)
    {
        float sum = 0f;
        foreach (var (cells, g, amp) in _octaves)
        {
            double x = Math.Clamp(u, 0, 1) * cells, y = Math.Clamp(v, 0, 1) * cells;
            int x0 = Math.Min((int)x, cells - 1), y0 = Math.Min((int)y, cells - 1);
            float fx = Smooth((float)(x - x0)), fy = Smooth((float)(y - y0));
            int n = cells + 1;
            float a = g[y0 * n + x0], b = g[y0 * n + x0 + 1], c = g[(y0 + 1) * n + x0], d = g[(y0 + 1) * n + x0 + 1];
            sum += amp * (a + (b - a) * fx + (c - a) * fy + (a - b - c + d) * fx * fy);
        }
        return sum * _norm;
    }

    private static float Smooth(float t) => t * t * (3 - 2 * t);
}
