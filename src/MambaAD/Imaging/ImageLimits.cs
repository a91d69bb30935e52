using System.Globalization;

namespace MambaAD.Imaging;

/// <summary>
/// The largest image that is decoded, in pixels (width × height), checked against the file's header before any pixel
/// is decoded — by the CLI, the dataset readers and the server alike (<see cref="RgbImage.Load"/>,
/// <see cref="RgbImage.Decode"/>). A file that declares 30000×30000 (a decompression bomb, or a photo far larger than
/// any model input) is then one error naming the file instead of gigabytes of memory.
/// </summary>
/// <remarks>
/// The default, 2²⁶ pixels (8192×8192, about 67 megapixels, about 470 MB while one image is decoded), is far above
/// the images of the benchmarks (at most a few megapixels). Raise it for genuine larger images; a file is also refused
/// when it is larger than 8 bytes per allowed pixel (no image format needs more), so that it is never read whole.
/// </remarks>
public static class ImageLimits
{
    /// <summary>The default <see cref="MaxPixels"/>: 2²⁶ (8192²).</summary>
    public const long DefaultMaxPixels = 1L << 26;

    /// <summary>The highest <see cref="MaxPixels"/>: what one RGBA decode buffer can hold.</summary>
    public static readonly long HighestMaxPixels = Array.MaxLength / 4;

    /// <summary>The name errors about the limit carry as <see cref="MambaADException.Setting"/>.</summary>
    public const string Setting = "MaxImagePixels";

    private static long _maxPixels = DefaultMaxPixels;

    /// <summary>The largest width × height decoded (process-wide).</summary>
    /// <exception cref="MambaADException">Set to less than 1 or more than <see cref="HighestMaxPixels"/>.</exception>
    public static long MaxPixels
    {
        get => Volatile.Read(ref _maxPixels);
        set
        {
            if (value < 1 || value > HighestMaxPixels)
                throw new MambaADException($"the image pixel limit {value} must be from 1 to {HighestMaxPixels} (the default is {DefaultMaxPixels}, 8192²)", Setting);
            Volatile.Write(ref _maxPixels, value);
        }
    }

    /// <summary>The largest image file read: 8 bytes per allowed pixel plus room for metadata.</summary>
    internal static long MaxFileBytes => Math.Min(Array.MaxLength, 8 * MaxPixels + (64L << 20));

    /// <summary>Checks the size an image declares before it is decoded.</summary>
    /// <exception cref="MambaADException">No pixels, or more than <see cref="MaxPixels"/>.</exception>
    internal static void Check(long width, long height, string name)
    {
        if (width <= 0 || height <= 0)
            throw new MambaADException($"{name}: the image declares no pixels ({width}×{height}); the file is corrupt");
        long max = MaxPixels;
        if (width > max || height > max || width * height > max)
            throw new MambaADException($"{name}: the image is {width}×{height} ({Pixels(width, height)}), more than the limit of " +
                $"{Pixels(max, 1)} that bounds the memory of decoding; shrink it, or raise the limit if the image is genuine", Setting);
    }

    private static string Pixels(long width, long height) => (double)width * height is var pixels && pixels >= 100_000
        ? $"{(pixels / 1e6).ToString("0.#", CultureInfo.InvariantCulture)} megapixels"
        : $"{width * height} pixels";
}
