using System.Runtime.InteropServices;
using SkiaSharp;

namespace MambaAD.Imaging;

/// <summary>
/// Decodes image files to RGB the way PIL's <c>Image.open(p).convert('RGB')</c> does (spec §13, golden README
/// "convert('RGB') behaviours"): grey is replicated, palettes are looked up, alpha is dropped without compositing,
/// 16-bit grey PNGs are clipped at 255 (not shifted), JPEG EXIF orientation is not applied.
/// </summary>
/// <remarks>
/// SkiaSharp decodes through <see cref="SKCodec"/> into unpremultiplied RGBA8888 (<c>SKBitmap.Decode</c> would
/// premultiply). Skia turns 16-bit grey into v >> 8, so those files go through <see cref="Png16Reader"/>.
/// Every failure is a <see cref="MambaADException"/> naming the file.
/// </remarks>
internal static class ImageDecoder
{
    /// <summary>The file extensions read as images (by the dataset readers and <c>predict</c> alike): what Skia decodes.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"];

    /// <summary>Whether <paramref name="path"/> has one of the <see cref="Extensions"/> (any case).</summary>
    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Decodes <paramref name="path"/> to 8-bit RGB.</summary>
    public static RgbImage DecodeRgb(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MambaADException($"{path}: cannot read the image file ({e.Message})", e);
        }
        return DecodeRgb(bytes, path);
    }

    /// <summary>Decodes an encoded image held in memory; <paramref name="name"/> is used in error messages.</summary>
    public static RgbImage DecodeRgb(byte[] bytes, string name)
    {
        if (Png16Reader.IsSixteenBitGrey(bytes)) return Png16Reader.DecodeClipped(bytes, name);
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw new MambaADException($"{name}: not a readable image (corrupt, or not PNG/JPEG/BMP/WebP/GIF)");
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w <= 0 || h <= 0) throw new MambaADException($"{name}: image has no pixels ({w}×{h})");
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[checked(w * h * 4)];
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        SKCodecResult result;
        try { result = codec.GetPixels(info, handle.AddrOfPinnedObject()); }
        finally { handle.Free(); }
        if (result != SKCodecResult.Success)
            throw new MambaADException($"{name}: image could not be decoded completely ({result}); the file is truncated or corrupt");
        var rgb = new byte[w * h * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgb[i] = rgba[j];
            rgb[i + 1] = rgba[j + 1];
            rgb[i + 2] = rgba[j + 2];
        }
        return new RgbImage(w, h, rgb);
    }

    /// <summary>Decodes <paramref name="path"/> to 8-bit grey, like PIL's <c>convert('L')</c>.</summary>
    public static (int Width, int Height, byte[] Grey) DecodeGrey(string path)
    {
        var rgb = DecodeRgb(path);
        return (rgb.Width, rgb.Height, rgb.ToGrey());
    }

    /// <summary>Reads only the header and returns the image size; a corrupt header is a <see cref="MambaADException"/>.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        if (!File.Exists(path)) throw new MambaADException($"{path}: image file not found");
        using (var fs = File.OpenRead(path))
        {
            var head = new byte[32];
            int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (n == head.Length && Png16Reader.IsSixteenBitGrey(head)) return Png16Reader.ReadSize(head);
        }
        using var codec = SKCodec.Create(path)
            ?? throw new MambaADException($"{path}: not a readable image (corrupt, or not PNG/JPEG/BMP/WebP/GIF)");
        return (codec.Info.Width, codec.Info.Height);
    }
}
