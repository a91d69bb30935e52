using MambaAD.Imaging;
using MambaAD.Inference;

namespace MambaAD.Reporting;

/// <summary>
/// The four gallery pictures of one test image at thumbnail size, as data URIs: the image as the model saw it
/// (square, PIL-resized), the ground truth, the jet overlay and the predicted mask, drawn from what the test kept
/// (<see cref="Gallery"/>). Photos are JPEG (quality 80), masks PNG: a 128-pixel row costs about 10 kB, so hundreds
/// of rows stay a few megabytes.
/// </summary>
internal static class Thumbnails
{
    public sealed record Row(string Image, string? GroundTruth, string Overlay, string PredictedMask);

    /// <param name="entry">The kept image.</param>
    /// <param name="size">Its thumbnail side.</param>
    /// <param name="pixelThreshold">Map value above which a pixel is predicted anomalous; colours run from 0 to twice it.</param>
    public static Row Render(Gallery.Entry entry, int size, double pixelThreshold)
    {
        var overlay = HeatmapOverlay.Blend(entry.Rgb, entry.Map, 0, HeatmapOverlay.ColourTop(entry.MapMax, pixelThreshold));
        string? truth = entry.Mask is { } mask ? Png(mask, size) : null;
        return new Row(Jpeg(entry.Rgb, size), truth, Jpeg(overlay, size), Png(HeatmapOverlay.Above(entry.Map, pixelThreshold), size));
    }

    private static string Jpeg(byte[] rgb, int size) => "data:image/jpeg;base64," + Convert.ToBase64String(ImageEncoder.Jpeg(rgb, size, size, 80));

    private static string Png(byte[] grey, int size) => "data:image/png;base64," + Convert.ToBase64String(ImageEncoder.PngGrey(grey, size, size));
}
