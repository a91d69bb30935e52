namespace MambaAD.Imaging;

/// <summary>Bilinear resize with align_corners = true (spec §12 step 2), in double, for maps of another size.</summary>
internal static class MapResize
{
    /// <summary>A square float map of side <paramref name="size"/> at width × height (the map itself when it already is).</summary>
    public static float[] ToSize(float[] map, int size, int width, int height)
    {
        if (width == size && height == size) return map;
        var src = new double[map.Length];
        for (int i = 0; i < map.Length; i++) src[i] = map[i];
        return AlignCorners(src, size, size, height, width);
    }

    public static float[] AlignCorners(ReadOnlySpan<double> src, int h, int w, int outH, int outW)
    {
        var dst = new float[outH * outW];
        for (int y = 0; y < outH; y++) AlignCornersRow(src, h, w, outH, y, dst.AsSpan(y * outW, outW));
        return dst;
    }

    /// <summary>Row <paramref name="y"/> of <see cref="AlignCorners"/>'s output (its width is <paramref name="dst"/>'s length).</summary>
    public static void AlignCornersRow(ReadOnlySpan<double> src, int h, int w, int outH, int y, Span<float> dst)
    {
        int outW = dst.Length;
        double sy = outH > 1 ? (double)(h - 1) / (outH - 1) : 0, sx = outW > 1 ? (double)(w - 1) / (outW - 1) : 0;
        double fy = y * sy;
        int y0 = Math.Min((int)fy, h - 1), y1 = Math.Min(y0 + 1, h - 1);
        double ly = fy - y0;
        for (int x = 0; x < outW; x++)
        {
            double fx = x * sx;
            int x0 = Math.Min((int)fx, w - 1), x1 = Math.Min(x0 + 1, w - 1);
            double lx = fx - x0;
            double top = src[y0 * w + x0] * (1 - lx) + src[y0 * w + x1] * lx;
            double bottom = src[y1 * w + x0] * (1 - lx) + src[y1 * w + x1] * lx;
            dst[x] = (float)(top * (1 - ly) + bottom * ly);
        }
    }
}
