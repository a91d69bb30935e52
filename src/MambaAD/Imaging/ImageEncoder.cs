using SkiaSharp;

namespace MambaAD.Imaging;

/// <summary>
/// The one image encoder (SkiaSharp) for every picture the tool writes: overlays and masks of <c>predict</c> and the
/// server, the report's thumbnails, the demo's dataset. PNGs are opaque (no alpha channel written) and use the Sub
/// filter at zlib level 1: about half the CPU of the defaults for ~8 % larger files, and deterministic bytes.
/// </summary>
internal static class ImageEncoder
{
    /// <summary>8-bit RGB (H·W·3, interleaved) as PNG.</summary>
    public static byte[] PngRgb(byte[] rgb, int width, int height) => PngRgba(Rgba(rgb, width, height), width, height);

    /// <summary>8-bit RGBA (H·W·4, alpha ignored) as an opaque RGB PNG.</summary>
    public static byte[] PngRgba(ReadOnlySpan<byte> rgba, int width, int height) =>
        Encode(rgba, new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque), width * 4,
            p => p.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.Sub, 1)));

    /// <summary>8-bit grey (H·W) as PNG.</summary>
    public static byte[] PngGrey(byte[] grey, int width, int height) =>
        Encode(grey, new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque), width,
            p => p.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.Sub, 1)));

    /// <summary>8-bit RGB (H·W·3, interleaved) as JPEG of the given quality (0–100).</summary>
    public static byte[] Jpeg(byte[] rgb, int width, int height, int quality) =>
        Encode(Rgba(rgb, width, height), new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque), width * 4,
            p => p.Encode(new SKJpegEncoderOptions(quality, SKJpegEncoderDownsample.Downsample420, SKJpegEncoderAlphaOption.Ignore)));

    private static byte[] Rgba(byte[] rgb, int width, int height)
    {
        if (rgb.Length != width * height * 3) throw new ArgumentException($"expected {width * height * 3} RGB bytes for {width}×{height}, got {rgb.Length}");
        var rgba = new byte[width * height * 4];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255;
        }
        return rgba;
    }

    private static unsafe byte[] Encode(ReadOnlySpan<byte> pixels, SKImageInfo info, int rowBytes, Func<SKPixmap, SKData?> encode)
    {
        if (pixels.Length != info.Height * rowBytes) throw new ArgumentException($"expected {info.Height * rowBytes} bytes for {info.Width}×{info.Height}, got {pixels.Length}");
        fixed (byte* p = pixels)
        {
            using var pixmap = new SKPixmap(info, (IntPtr)p, rowBytes);
            using var data = encode(pixmap) ?? throw new InvalidOperationException($"SkiaSharp could not encode a {info.Width}×{info.Height} {info.ColorType} image");
            return data.ToArray();
        }
    }
}
