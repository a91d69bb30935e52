using System.Runtime.InteropServices;

namespace MambaAD.Imaging;

/// <summary>
/// Heat-map pictures for people: an anomaly map drawn over its image in the jet colour map, and binary masks.
/// Maps are resized to the picture with bilinear interpolation (align_corners, as spec §12 resizes maps). One
/// colour rule and one blend for <c>predict</c>, the server and the report.
/// </summary>
internal static class HeatmapOverlay
{
    /// <summary>
    /// The image with the map blended over it (alpha 0.5) as PNG bytes, at the image's own size. Colours run from
    /// blue at <paramref name="low"/> to red at <paramref name="high"/> (values are clipped).
    /// </summary>
    public static unsafe byte[] OverlayPng(RgbImage image, float[] map, int mapSize, double low, double high)
    {
        // Row by row straight into the encoder's RGBA buffer: no full-size map or blended copy besides it, which for a
        // large image (8192² is 200 MB of RGB) would more than double the memory an overlay takes. The buffer is
        // native memory freed on return, not an array left on the large-object heap until a full collection.
        int width = image.Width, height = image.Height;
        var src = new double[map.Length];
        for (int i = 0; i < map.Length; i++) src[i] = map[i];
        int bytes = checked(width * height * 4);
        var rgba = (byte*)NativeMemory.Alloc((nuint)bytes);
        try
        {
            var row = new float[width];
            for (int y = 0; y < height; y++)
            {
                if (width == mapSize && height == mapSize) map.AsSpan(y * width, width).CopyTo(row);
                else MapResize.AlignCornersRow(src, mapSize, mapSize, height, y, row);
                BlendRow(image.Hwc.AsSpan(y * width * 3, width * 3), row, low, high, new Span<byte>(rgba + (long)y * width * 4, width * 4), 4);
            }
            return ImageEncoder.PngRgba(new ReadOnlySpan<byte>(rgba, bytes), width, height);
        }
        finally { NativeMemory.Free(rgba); }
    }

    /// <summary>
    /// RGB pixels (H·W·3) with a map of the same size blended over them: (pixel + jet colour) / 2, rounded to even,
    /// colours from blue at <paramref name="low"/> to red at <paramref name="high"/>.
    /// </summary>
    public static byte[] Blend(byte[] rgb, float[] map, double low, double high)
    {
        if (rgb.Length != map.Length * 3) throw new ArgumentException($"{rgb.Length} RGB bytes for a map of {map.Length} values");
        var blended = new byte[rgb.Length];
        BlendRow(rgb, map, low, high, blended, 3);
        return blended;
    }

    /// <summary>One run of pixels: RGB in, blended RGB (<paramref name="channels"/> 3) or opaque RGBA (4) out.</summary>
    private static void BlendRow(ReadOnlySpan<byte> rgb, ReadOnlySpan<float> map, double low, double high, Span<byte> dst, int channels)
    {
        double range = Math.Max(high - low, 1e-12);
        for (int i = 0; i < map.Length; i++)
        {
            var (r, g, b) = Jet(Math.Clamp((map[i] - low) / range, 0, 1));
            int o = channels * i;
            dst[o] = Half(rgb[3 * i], r);
            dst[o + 1] = Half(rgb[3 * i + 1], g);
            dst[o + 2] = Half(rgb[3 * i + 2], b);
            if (channels == 4) dst[o + 3] = 255;
        }
    }

    /// <summary>A black/white PNG of the pixels whose map value exceeds <paramref name="threshold"/>, at width × height.</summary>
    public static byte[] MaskPng(float[] map, int mapSize, double threshold, int width, int height) =>
        ImageEncoder.PngGrey(Above(MapResize.ToSize(map, mapSize, width, height), threshold), width, height);

    /// <summary>255 where the value exceeds <paramref name="threshold"/>, else 0.</summary>
    public static byte[] Above(float[] values, double threshold)
    {
        var grey = new byte[values.Length];
        for (int i = 0; i < grey.Length; i++) grey[i] = values[i] > threshold ? (byte)255 : (byte)0;
        return grey;
    }

    /// <summary>
    /// The map value drawn red: twice the pixel threshold, so the threshold sits mid-scale; without a (positive)
    /// threshold, the map's own maximum. Blue is always 0.
    /// </summary>
    public static double ColourTop(float[] map, double? pixelThreshold) =>
        pixelThreshold is > 0 ? ColourTop(0, pixelThreshold) : ColourTop(map.Max(), pixelThreshold);

    /// <summary><see cref="ColourTop(float[], double?)"/> of a map whose maximum is <paramref name="mapMax"/>.</summary>
    public static double ColourTop(double mapMax, double? pixelThreshold) =>
        pixelThreshold is > 0 and var t ? 2 * t : Math.Max(mapMax, 1e-12);

    /// <summary>The jet colour map at t ∈ [0, 1] (blue → cyan → yellow → red).</summary>
    internal static (byte R, byte G, byte B) Jet(double t)
    {
        static byte C(double v) => (byte)Math.Round(255 * Math.Clamp(v, 0, 1));
        return (C(1.5 - Math.Abs(4 * t - 3)), C(1.5 - Math.Abs(4 * t - 2)), C(1.5 - Math.Abs(4 * t - 1)));
    }

    private static byte Half(byte under, byte over) => (byte)Math.Round(0.5 * under + 0.5 * over);
}
