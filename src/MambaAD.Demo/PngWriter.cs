using System.Runtime.InteropServices;
using SkiaSharp;

namespace MambaAD.Demo;

/// <summary>Encodes 8-bit RGB and 8-bit grey buffers as PNG through SkiaSharp (opaque, so no alpha channel is written; deterministic output).</summary>
internal static class PngWriter
{
    public static byte[] Rgb(byte[] rgb, int size)
    {
        var rgba = new byte[size * size * 4];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255;
        }
        return Encode(rgba, new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque), size * 4);
    }

    public static byte[] Grey(byte[] grey, int size) =>
        Encode(grey, new SKImageInfo(size, size, SKColorType.Gray8, SKAlphaType.Opaque), size);

    private static byte[] Encode(byte[] pixels, SKImageInfo info, int rowBytes)
    {
        var handle = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        try
        {
            using var pixmap = new SKPixmap(info, handle.AddrOfPinnedObject(), rowBytes);
            // Sub filter + zlib level 1: about half the CPU of the defaults for ~8 % larger files (noisy images compress poorly anyway)
            using var data = pixmap.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.Sub, 1))
                ?? throw new InvalidOperationException("SkiaSharp could not encode a PNG");
            return data.ToArray();
        }
        finally { handle.Free(); }
    }
}
