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

    /// <summary>Filters a row-major H×W image in place.</summary>
    public static void Apply(Span<double> image, int height, int width, double sigma = 4.0)
    {
        var w = Kernel(sigma);
        int r = w.Length / 2;
        var line = new double[Math.Max(height, width) + 2 * r];
        // Axis 0 (down each column), then axis 1 (along each row), as scipy iterates the axes.
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
