using System.Numerics;
using System.Runtime.CompilerServices;

namespace MambaAD.Model;

/// <summary>
/// scipy.ndimage.gaussian_filter as the official post-processing calls it (spec §12 step 4): separable, σ = 4,
/// truncate 4 (radius 16, 33 taps), weights exp(−x²/(2σ²)) normalised to 1, borders in scipy's 'reflect' mode
/// (d c b a | a b c d | d c b a — the edge pixel repeats), computed in float64, axis 0 first, then axis 1.
/// </summary>
internal static class GaussianFilter
{
    /// <summary>The normalised 1-D kernel for σ and truncate, of length 2·⌊truncate·σ + 0.5⌋ + 1.</summary>
    public static double[] Kernel(double sigma, double truncate = 4.0)
    {
        int radius = (int)(truncate * sigma + 0.5);
        var w = new double[2 * radius + 1];
        double sum = 0;
        for (int i = -radius; i <= radius; i++) sum += w[i + radius] = Math.Exp(-0.5 * i * i / (sigma * sigma));
        for (int i = 0; i < w.Length; i++) w[i] /= sum;
        return w;
    }

    /// <summary>
    /// Filters a row-major H×W image in place: axis 0 (down the columns), then axis 1 (along the rows), as scipy
    /// iterates the axes. Vectors run across pixels that are neighbours in memory; each pixel's sum is the reference's
    /// (taps in order from zero, multiply then add, never fused), so the same bits as <see cref="Reference"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first map, not after 30 calls
    public static void Apply(Span<double> image, int height, int width, double sigma = 4.0)
    {
        var w = Kernel(sigma);
        int r = w.Length / 2;
        var pool = System.Buffers.ArrayPool<double>.Shared;
        var padded = pool.Rent(Math.Max((height + 2 * r) * width, width + 2 * r));
        try
        {
            // Axis 0: the image's rows reflected above and below, then every output row from 2r + 1 padded rows.
            for (int i = -r; i < height + r; i++)
                image.Slice(Reflect(i, height) * width, width).CopyTo(padded.AsSpan((i + r) * width, width));
            for (int i = 0; i < height; i++)
                Taps(padded.AsSpan(i * width), width, w, image.Slice(i * width, width));
            // Axis 1: each row reflected at both ends into a line, every output pixel from 2r + 1 neighbours.
            for (int row = 0; row < height; row++)
            {
                var line = padded.AsSpan(0, width + 2 * r);
                var data = image.Slice(row * width, width);
                for (int i = -r; i < width + r; i++) line[i + r] = data[Reflect(i, width)];
                Taps(line, 1, w, data);
            }
        }
        finally
        {
            pool.Return(padded);
        }
    }

    /// <summary>out[j] = Σ_k w[k]·src[k·stride + j] for j &lt; out.Length, k in order: four vectors of j at a time, whose
    /// sums are four independent chains (one chain of 33 dependent adds waits on the adder's latency).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Taps(ReadOnlySpan<double> src, int stride, double[] w, Span<double> output)
    {
        int n = output.Length, v = Vector<double>.Count, j = 0;
        for (; j + 4 * v <= n; j += 4 * v)
        {
            Vector<double> a0 = Vector<double>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < w.Length; k++)
            {
                var wk = new Vector<double>(w[k]);
                var row = src.Slice(k * stride + j);
                a0 += wk * new Vector<double>(row);
                a1 += wk * new Vector<double>(row.Slice(v));
                a2 += wk * new Vector<double>(row.Slice(2 * v));
                a3 += wk * new Vector<double>(row.Slice(3 * v));
            }
            a0.CopyTo(output.Slice(j));
            a1.CopyTo(output.Slice(j + v));
            a2.CopyTo(output.Slice(j + 2 * v));
            a3.CopyTo(output.Slice(j + 3 * v));
        }
        for (; j + v <= n; j += v)
        {
            var acc = Vector<double>.Zero;
            for (int k = 0; k < w.Length; k++) acc += new Vector<double>(w[k]) * new Vector<double>(src.Slice(k * stride + j));
            acc.CopyTo(output.Slice(j));
        }
        for (; j < n; j++)
        {
            double acc = 0;
            for (int k = 0; k < w.Length; k++) acc += w[k] * src[k * stride + j];
            output[j] = acc;
        }
    }

    /// <summary>The plain per-line filter, the reference <see cref="Apply"/> must equal bit for bit.</summary>
    internal static void Reference(Span<double> image, int height, int width, double sigma = 4.0)
    {
        var w = Kernel(sigma);
        int r = w.Length / 2;
        var line = new double[Math.Max(height, width) + 2 * r];
        for (int c = 0; c < width; c++)
            FilterLine(image, start: c, stride: width, count: height, w, line);
        for (int row = 0; row < height; row++)
            FilterLine(image, start: row * width, stride: 1, count: width, w, line);
    }

    private static void FilterLine(Span<double> data, int start, int stride, int count, double[] w, double[] line)
    {
        int r = w.Length / 2;
        for (int i = -r; i < count + r; i++) line[i + r] = data[start + Reflect(i, count) * stride];
        for (int i = 0; i < count; i++)
        {
            double acc = 0;
            for (int k = 0; k < w.Length; k++) acc += w[k] * line[i + k];
            data[start + i * stride] = acc;
        }
    }

    /// <summary>scipy 'reflect' (half-sample symmetric) index into [0, n).</summary>
    internal static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * n;
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - 1 - i;
    }
}
