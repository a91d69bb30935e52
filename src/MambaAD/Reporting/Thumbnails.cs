using MambaAD.Imaging;
using MambaAD.Inference;

namespace MambaAD.Reporting;

/// <summary>
/// The four gallery pictures of one test image at thumbnail size, as data URIs: the image as the model saw it
/// (square, PIL-resized), the ground truth, the jet overlay and the predicted mask. Photos are JPEG (quality 80),
/// masks PNG: a 128-pixel row costs about 10 kB, so hundreds of rows stay a few megabytes.
/// </summary>
internal static class Thumbnails
{
    public sealed record Row(string Image, string? GroundTruth, string Overlay, string PredictedMask);

    /// <param name="result">The test outcome of the image.</param>
    /// <param name="mapSize">Side of its map.</param>
    /// <param name="size">Thumbnail side.</param>
    /// <param name="pixelThreshold">Map value above which a pixel is predicted anomalous; colours run from 0 to twice it.</param>
    public static Row Render(ImageResult result, int mapSize, int size, double pixelThreshold)
    {
        var rgb = Preprocess.ResizedRgb(ImageDecoder.DecodeRgb(result.Sample.ImagePath), size);
        var map = MapResize.ToSize(result.Map, mapSize, size, size);
        var overlay = HeatmapOverlay.Blend(rgb, map, 0, HeatmapOverlay.ColourTop(result.Map, pixelThreshold));
        string? truth = null;
        if (result.Mask is { } mask)
        {
            var grey = new byte[size * size];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    grey[y * size + x] = mask[(y * mapSize / size) * mapSize + x * mapSize / size] != 0 ? (byte)255 : (byte)0;
            truth = Png(grey, size);
        }
        return new Row(Jpeg(rgb, size), truth, Jpeg(overlay, size), Png(HeatmapOverlay.Above(map, pixelThreshold), size));
    }

    private static string Jpeg(byte[] rgb, int size) => "data:image/jpeg;base64," + Convert.ToBase64String(ImageEncoder.Jpeg(rgb, size, size, 80));

    private static string Png(byte[] grey, int size) => "data:image/png;base64," + Convert.ToBase64String(ImageEncoder.PngGrey(grey, size, size));
}
