namespace MambaAD.Imaging;

/// <summary>An 8-bit RGB image: <see cref="Hwc"/> holds Height·Width·3 bytes, row-major, channels interleaved.</summary>
public sealed record RgbImage(int Width, int Height, byte[] Hwc)
{
    /// <summary>Decodes an image file (PNG, JPEG, BMP, WebP, GIF; grey, RGB, RGBA) as PIL's convert('RGB') does.</summary>
    /// <exception cref="MambaADException">The file is missing, unreadable or corrupt.</exception>
    public static RgbImage Load(string path) => ImageDecoder.DecodeRgb(path);

    /// <summary>Decodes an encoded image held in memory; <paramref name="name"/> names it in errors.</summary>
    /// <exception cref="MambaADException">The bytes are not a readable image.</exception>
    public static RgbImage Decode(byte[] encoded, string name = "image") => ImageDecoder.DecodeRgb(encoded, name);

    /// <summary>PIL <c>convert('L')</c> of this image: L = (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16 (ITU-R 601-2 luma).</summary>
    public byte[] ToGrey()
    {
        var g = new byte[Width * Height];
        for (int i = 0; i < g.Length; i++)
            g[i] = (byte)((Hwc[3 * i] * 19595 + Hwc[3 * i + 1] * 38470 + Hwc[3 * i + 2] * 7471 + 0x8000) >> 16);
        return g;
    }
}
