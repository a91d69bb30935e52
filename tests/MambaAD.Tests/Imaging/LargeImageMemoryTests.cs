using MambaAD.Imaging;

namespace MambaAD.Tests.Imaging;

/// <summary>
/// A large image's full-size scratch buffers — the RGBA Skia decodes into, the overlay's RGBA before encoding — are
/// native memory freed on return. As arrays they stayed on the large-object heap until a full collection, and
/// <c>predict</c>'s peak RSS over the fuzz corpus depended on when that came (FuzzTests). Counted on this thread's
/// managed allocations, which tests running in parallel do not touch.
/// </summary>
public class LargeImageMemoryTests
{
    [Fact]
    public void Decoding_and_overlaying_a_large_image_put_no_full_size_rgba_on_the_managed_heap()
    {
        const int w = 3000, h = 2000;
        long pixels = (long)w * h;
        var rgb = new byte[3 * pixels];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                (rgb[3 * (y * w + x)], rgb[3 * (y * w + x) + 1], rgb[3 * (y * w + x) + 2]) = ((byte)(x / 12), (byte)(y / 8), (byte)((x + y) / 20));
        var png = ImageEncoder.PngRgb(rgb, w, h);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var image = ImageDecoder.DecodeRgb(png, "large.png");
        long decoding = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(rgb, image.Hwc);
        // The RGB image (3 bytes a pixel) and small change; an RGBA array would add 4 bytes a pixel.
        Assert.InRange(decoding, 3 * pixels, 3 * pixels + (1 << 20));

        var map = Enumerable.Range(0, 64 * 64).Select(i => i / 4096f).ToArray();
        before = GC.GetAllocatedBytesForCurrentThread();
        var overlay = HeatmapOverlay.OverlayPng(image, map, 64, 0, 1);
        long overlaying = GC.GetAllocatedBytesForCurrentThread() - before;
        // The PNG it returns, one row and the map in float64.
        Assert.InRange(overlaying, overlay.Length, overlay.Length + (1 << 20));
    }
}
