using MambaAD.Imaging;
using MambaAD.Inference;
using SkiaSharp;

namespace MambaAD.Reporting;

/// <summary>
/// The four gallery pictures of one test image at thumbnail size, as data URIs: the image as the model saw it
/// (square, PIL-resized), the ground truth, the jet overlay and the predicted mask. Photos are JPEG (quality 80),
/// masks PNG: a 128-pixel row costs about 10 kB, so hundreds of rows stay a few megabytes.
/// </summary>
internal static class Thumbnails
{
    internal sealed record Row(string Image, string? GroundTruth, string Overlay, string PredictedMask);

    /// <param name="result">The test outcome of the image.</param>
    /// <param name="mapSize">Side of its map.</param>
    /// <param name="size">Thumbnail side.</param>
    /// <param name="pixelThreshold">Map value above which a pixel is predicted anomalous; colours run from 0 to twice it.</param>
    public static Row Render(ImageResult result, int mapSize, int size, double pixelThreshold)
    {
        var image = ImageDecoder.DecodeRgb(result.Sample.ImagePath);
        var rgb = PilResize.Resize(image.Hwc, image.Width, image.Height, 3, size, size);
        var map = Resize(result.Map, mapSize, size);
        var overlay = new byte[rgb.Length];
        double high = HeatmapOverlay.ColourTop(result.Map, pixelThreshold);
        var predicted = new byte[size * size];
        for (int i = 0; i < map.Length; i++)
        {
            var (r, g, b) = HeatmapOverlay.Jet(Math.Clamp(map[i] / high, 0, 1));
            overlay[3 * i] = (byte)((rgb[3 * i] + r + 1) / 2);
            overlay[3 * i + 1] = (byte)((rgb[3 * i + 1] + g + 1) / 2);
            overlay[3 * i + 2] = (byte)((rgb[3 * i + 2] + b + 1) / 2);
            predicted[i] = map[i] > pixelThreshold ? (byte)255 : (byte)0;
        }
        string? truth = null;
        if (result.Mask is { } mask)
        {
            var grey = new byte[size * size];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    grey[y * size + x] = mask[(y * mapSize / size) * mapSize + x * mapSize / size] != 0 ? (byte)255 : (byte)0;
            truth = Png(grey, size);
        }
        return new Row(Jpeg(rgb, size), truth, Jpeg(overlay, size), Png(predicted, size));
    }

    private static float[] Resize(float[] map, int mapSize, int size)
    {
        if (mapSize == size) return map;
        var src = new double[map.Length];
        for (int i = 0; i < map.Length; i++) src[i] = map[i];
        return MapResize.AlignCorners(src, mapSize, mapSize, size, size);
    }

    private static string Jpeg(byte[] rgb, int size)
    {
        var rgba = new byte[size * size * 4];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255;
        }
        return "data:image/jpeg;base64," + Convert.ToBase64String(Encode(rgba, size, SKColorType.Rgba8888, SKEncodedImageFormat.Jpeg, 80));
    }

    private static string Png(byte[] grey, int size) =>
        "data:image/png;base64," + Convert.ToBase64String(Encode(grey, size, SKColorType.Gray8, SKEncodedImageFormat.Png, 100));

    private static byte[] Encode(byte[] pixels, int size, SKColorType type, SKEncodedImageFormat format, int quality)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, type, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }
}
