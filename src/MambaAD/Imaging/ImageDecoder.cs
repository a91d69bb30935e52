using System.Buffers.Binary;
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
/// Every failure is a <see cref="MambaADException"/> naming the file. The size an image declares is checked against
/// <see cref="ImageLimits"/> before any pixel is decoded, and a file is never read whole when it is larger than any
/// allowed image could be.
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
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            if (fs.Length > ImageLimits.MaxFileBytes)
                throw new MambaADException($"{path}: the file has {fs.Length} bytes, more than any image within the limit of {ImageLimits.MaxPixels} pixels needs; it is not read", ImageLimits.Setting);
            if (fs.Length == 0) throw new MambaADException($"{path}: the image file is empty (0 bytes)");
            bytes = new byte[fs.Length];
            fs.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MambaADException($"{path}: cannot read the image file ({(e is FileNotFoundException or DirectoryNotFoundException ? "it does not exist" : IO.IoError.Reason(e))})", e);
        }
        return DecodeRgb(bytes, path);
    }

    /// <summary>Decodes an encoded image held in memory; <paramref name="name"/> is used in error messages.</summary>
    public static unsafe RgbImage DecodeRgb(byte[] bytes, string name)
    {
        CheckPng(bytes, name);
        if (Png16Reader.IsSixteenBitGrey(bytes)) return Png16Reader.DecodeClipped(bytes, name);
        fixed (byte* p = bytes)
        {
            // The codec reads the caller's bytes in place (no copy): they are pinned while it exists.
            using var data = SKData.Create((IntPtr)p, bytes.Length);
            using var codec = SKCodec.Create(data)
                ?? throw new MambaADException($"{name}: not a readable image (corrupt, or not PNG/JPEG/BMP/WebP/GIF)");
            return Decode(codec, name);
        }
    }

    /// <summary>
    /// A PNG's declared size against <see cref="ImageLimits"/>, and against its length: it cannot hold more than 1032
    /// bytes of (filtered) pixel rows per byte of file, deflate's largest ratio, so one that declares more is truncated
    /// or crafted, and is refused before a buffer of its declared size exists.
    /// </summary>
    private static void CheckPng(byte[] b, string name)
    {
        if (b.Length < 29 || !b.AsSpan(0, 8).SequenceEqual((ReadOnlySpan<byte>)[137, 80, 78, 71, 13, 10, 26, 10]) || !b.AsSpan(12, 4).SequenceEqual("IHDR"u8)) return;
        long w = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(16)), h = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(20));
        ImageLimits.Check(w, h, name);
        int channels = b[25] switch { 2 => 3, 4 => 2, 6 => 4, _ => 1 };
        double rowBytes = 1 + Math.Ceiling(w * channels * (double)b[24] / 8);
        if (h * rowBytes > 1032.0 * b.Length + 65536)
            throw new MambaADException($"{name}: the PNG declares {w}×{h} pixels, more than its {b.Length} bytes can hold; the file is truncated or corrupt");
    }

    private static unsafe RgbImage Decode(SKCodec codec, string name)
    {
        int w = codec.Info.Width, h = codec.Info.Height;
        ImageLimits.Check(w, h, name); // before any pixel buffer exists
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        // Skia's RGBA is scratch, so it is native memory freed on return: as an array it stayed on the large-object
        // heap until a full collection (200 MB per decode of a 50-megapixel image), and several piled up.
        var rgba = (byte*)NativeMemory.Alloc((nuint)checked((long)w * h * 4));
        try
        {
            var result = codec.GetPixels(info, (IntPtr)rgba);
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
        finally { NativeMemory.Free(rgba); }
    }

    /// <summary>Decodes <paramref name="path"/> to 8-bit grey, like PIL's <c>convert('L')</c>.</summary>
    public static (int Width, int Height, byte[] Grey) DecodeGrey(string path)
    {
        var rgb = DecodeRgb(path);
        return (rgb.Width, rgb.Height, rgb.ToGrey());
    }

    /// <summary>Reads only the header and returns the image size; a corrupt header, or one that declares no pixels, is a <see cref="MambaADException"/>.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        if (!File.Exists(path)) throw new MambaADException($"{path}: image file not found");
        (long W, long H) size;
        using (var fs = File.OpenRead(path))
        {
            var head = new byte[32];
            int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (n == head.Length && Png16Reader.IsSixteenBitGrey(head)) size = Png16Reader.ReadSize(head);
            else
            {
                using var codec = SKCodec.Create(path)
                    ?? throw new MambaADException($"{path}: not a readable image (corrupt, or not PNG/JPEG/BMP/WebP/GIF)");
                size = (codec.Info.Width, codec.Info.Height);
            }
        }
        if (size.W <= 0 || size.H <= 0 || size.W > int.MaxValue || size.H > int.MaxValue)
            throw new MambaADException($"{path}: the image declares {size.W}×{size.H} pixels; the file is corrupt");
        return ((int)size.W, (int)size.H);
    }
}
