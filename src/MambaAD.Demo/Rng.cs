using System.Text;

namespace MambaAD.Demo;

/// <summary>
/// Deterministic random helpers for the synthetic dataset: per-image seeds derived by a stable hash (never
/// <see cref="string.GetHashCode()"/>, which is randomised per process) and a few distributions on <see cref="Random"/>.
/// </summary>
internal static class Rng
{
    /// <summary>A seed for one image, from the master seed and the image's identity (FNV-1a 64, folded to 31 bits).</summary>
    public static int Derive(int seed, params string[] parts)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(seed.ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + string.Join("|", parts)))
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        h ^= h >> 33; h *= 0xff51afd7ed558ccdUL; h ^= h >> 33;
        return (int)(h & 0x7fffffff);
    }

    public static double Uniform(this Random rng, double lo, double hi) => lo + (hi - lo) * rng.NextDouble();

    /// <summary>Standard normal (Box–Muller).</summary>
    public static double Gaussian(this Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>
    /// Per-channel, approximately Gaussian sensor noise of standard deviation <paramref name="sigma"/> for a size² RGB
    /// image: each value is a sum of four uniform bytes (Irwin–Hall) from a xorshift64* stream seeded by
    /// <paramref name="rng"/> — an order of magnitude faster than Box–Muller on <see cref="Random"/>.
    /// </summary>
    public static float[] SensorNoise(Random rng, int size, double sigma)
    {
        var n = new float[size * size * 3];
        ulong state = (ulong)rng.NextInt64() | 1UL;
        float scale = (float)(sigma / Math.Sqrt(4 * (256.0 * 256.0 - 1) / 12.0));
        for (int i = 0; i < n.Length; i += 2)
        {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
            ulong r = state * 2685821657736338717UL;
            int a = (int)(r & 0xff) + (int)((r >> 8) & 0xff) + (int)((r >> 16) & 0xff) + (int)((r >> 24) & 0xff) - 510;
            int b = (int)((r >> 32) & 0xff) + (int)((r >> 40) & 0xff) + (int)((r >> 48) & 0xff) + (int)(r >> 56) - 510;
            n[i] = a * scale;
            if (i + 1 < n.Length) n[i + 1] = b * scale;
        }
        return n;
    }
}
