using SkiaSharp;

namespace MambaAD.Imaging;

/// <summary>
/// Heat-map pictures for people: an anomaly map drawn over its image in the jet colour map, and binary masks.
/// Maps are resized to the image with bilinear interpolation (align_corners, as spec §12 resizes maps).
/// </summary>
internal static class HeatmapOverlay
{
    /// <summary>
    /// The image with the map blended over it (alpha 0.5) as PNG bytes, at the image's own size. Colours run from
    /// blue at <paramref name="low"/> to red at <paramref name="high"/> (values are clipped).
    /// </summary>
    public static byte[] OverlayPng(RgbImage image, float[] map, int mapSize, double low, double high, double alpha = 0.5)
    {
        var resized = Resize(map, mapSize, image.Width, image.Height);
        var rgba = new byte[image.Width * image.Height * 4];
        double range = Math.Max(high - low, 1e-12);
        for (int i = 0; i < resized.Length; i++)
        {
            var (r, g, b) = Jet(Math.Clamp((resized[i] - low) / range, 0, 1));
            rgba[4 * i] = Blend(image.Hwc[3 * i], r, alpha);
            rgba[4 * i + 1] = Blend(image.Hwc[3 * i + 1], g, alpha);
            rgba[4 * i + 2] = Blend(image.Hwc[3 * i + 2], b, alpha);
            rgba[4 * i + 3] = 255;
        }
        return EncodePng(rgba, image.Width, image.Height, SKColorType.Rgba8888);
    }

    /// <summary>A black/white PNG of the pixels whose map value exceeds <paramref name="threshold"/>, at width × height.</summary>
    public static byte[] MaskPng(float[] map, int mapSize, double threshold, int width, int height)
    {
        var resized = Resize(map, mapSize, width, height);
        var grey = new byte[width * height];
        for (int i = 0; i < grey.Length; i++) grey[i] = resized[i] > threshold ? (byte)255 : (byte)0;
        return EncodePng(grey, width, height, SKColorType.Gray8);
    }

    /// <summary>
    /// The map value drawn red: twice the pixel threshold, so the threshold sits mid-scale; without a (positive)
    /// threshold, the map's own maximum. Blue is always 0. One rule for predict, the server and the report.
    /// </summary>
    public static double ColourTop(float[] map, double? pixelThreshold) =>
        pixelThreshold is > 0 and var t ? 2 * t : Math.Max(map.Max(), 1e-12);

    /// <summary>The jet colour map at t ∈ [0, 1] (blue → cyan → yellow → red).</summary>
    internal static (byte R, byte G, byte B) Jet(double t)
    {
        static byte C(double v) => (byte)Math.Round(255 * Math.Clamp(v, 0, 1));
        return (C(1.5 - Math.Abs(4 * t - 3)), C(1.5 - Math.Abs(4 * t - 2)), C(1.5 - Math.Abs(4 * t - 1)));
    }

    private static byte Blend(byte under, byte over, double alpha) => (byte)Math.Round((1 - alpha) * under + alpha * over);

    private static float[] Resize(float[] map, int size, int width, int height)
    {
        if (width == size && height == size) return map;
        var src = new double[map.Length];
        for (int i = 0; i < map.Length; i++) src[i] = map[i];
        return MapResize.AlignCorners(src, size, size, height, width);
    }

    private static byte[] EncodePng(byte[] pixels, int width, int height, SKColorType type)
    {
        var info = new SKImageInfo(width, height, type, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
