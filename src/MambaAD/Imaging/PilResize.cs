namespace MambaAD.Imaging;

/// <summary>
/// PIL's antialiased bilinear <c>Image.resize(size, BILINEAR)</c> on 8-bit data, bit-exact (golden README,
/// "PIL resize, as a port must reproduce it"). Two separable passes on uint8 data, horizontal first (only if the
/// width changes), then vertical (only if the height changes); the intermediate is rounded and clipped to uint8.
/// Per axis: scale = in/out, fs = max(scale, 1), support = fs; output i has centre c = (i + 0.5)·scale and taps
/// x ∈ [max(trunc(c − fs + 0.5), 0), min(trunc(c + fs + 0.5), in)) with weights max(0, 1 − |(x − c + 0.5)/fs|),
/// normalised in double and quantised to 22-bit fixed point: out = clip((2²¹ + Σ k·v) >> 22, 0, 255).
/// This is neither Skia's nor torch's bilinear.
/// </summary>
internal static class PilResize
{
    private const int PrecisionBits = 22;

    /// <summary>Resizes interleaved 8-bit pixels (<paramref name="channels"/> per pixel) to <paramref name="outWidth"/>×<paramref name="outHeight"/>.</summary>
    public static byte[] Resize(byte[] src, int width, int height, int channels, int outWidth, int outHeight)
    {
        if (src.Length != width * height * channels)
            throw new ArgumentException($"expected {width * height * channels} bytes for {width}×{height}×{channels}, got {src.Length}");
        if (outWidth <= 0 || outHeight <= 0) throw new ArgumentException($"output size must be positive, got {outWidth}×{outHeight}");
        var cur = src;
        int w = width;
        if (outWidth != width)
        {
            var (start, count, k, ksize) = Coefficients(width, outWidth);
            var dst = new byte[outWidth * height * channels];
            for (int y = 0; y < height; y++)
            {
                int rowIn = y * width * channels, rowOut = y * outWidth * channels;
                for (int xo = 0; xo < outWidth; xo++)
                {
                    int kb = xo * ksize, x0 = start[xo], n = count[xo];
                    for (int c = 0; c < channels; c++)
                    {
                        int ss = 1 << (PrecisionBits - 1);
                        for (int t = 0; t < n; t++) ss += cur[rowIn + (x0 + t) * channels + c] * k[kb + t];
                        dst[rowOut + xo * channels + c] = Clip8(ss);
                    }
                }
            }
            cur = dst;
            w = outWidth;
        }
        if (outHeight != height)
        {
            var (start, count, k, ksize) = Coefficients(height, outHeight);
            int row = w * channels;
            var dst = new byte[outHeight * row];
            for (int yo = 0; yo < outHeight; yo++)
            {
                int kb = yo * ksize, y0 = start[yo], n = count[yo];
                for (int i = 0; i < row; i++)
                {
                    int ss = 1 << (PrecisionBits - 1);
                    for (int t = 0; t < n; t++) ss += cur[(y0 + t) * row + i] * k[kb + t];
                    dst[yo * row + i] = Clip8(ss);
                }
            }
            cur = dst;
        }
        return ReferenceEquals(cur, src) ? (byte[])src.Clone() : cur;
    }

    private static byte Clip8(int ss)
    {
        int v = ss >> PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /// <summary>Per output index: first input tap, tap count, and fixed-point weights (ksize per output).</summary>
    private static (int[] Start, int[] Count, int[] K, int KSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double fs = Math.Max(scale, 1.0);
        double support = fs; // bilinear support is 1, scaled by fs when downsampling (antialiasing)
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var k = new int[outSize * ksize];
        var w = new double[ksize];
        double ss = 1.0 / fs;
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            double ww = 0;
            for (int x = 0; x < xmax; x++)
            {
                double t = Math.Abs((x + xmin - center + 0.5) * ss);
                w[x] = t < 1.0 ? 1.0 - t : 0.0;
                ww += w[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double p = ww != 0 ? w[x] / ww : w[x];
                k[i * ksize + x] = p < 0 ? (int)(-0.5 + p * (1 << PrecisionBits)) : (int)(0.5 + p * (1 << PrecisionBits));
            }
            start[i] = xmin;
            count[i] = xmax;
        }
        return (start, count, k, ksize);
    }
}
