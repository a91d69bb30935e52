using System.Buffers.Binary;
using System.IO.Compression;

namespace MambaAD.Imaging;

/// <summary>
/// A minimal reader for 16-bit greyscale PNGs (colour type 0, bit depth 16, not interlaced), which Pillow opens as
/// mode 'I' and converts to RGB by clipping at 255 (v ≥ 255 → 255; golden README). Skia would give v >> 8.
/// Follows the PNG specification: chunks, IDAT concatenated and inflated with zlib, per-row filters 0–4.
/// </summary>
internal static class Png16Reader
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    public static bool IsSixteenBitGrey(ReadOnlySpan<byte> b) =>
        b.Length >= 29 && b[..8].SequenceEqual(Signature) && b.Slice(12, 4).SequenceEqual("IHDR"u8)
        && b[24] == 16 && b[25] == 0;

    /// <summary>The size in the IHDR chunk (PNG allows up to 2³¹−1 per side; 0 is invalid).</summary>
    public static (long Width, long Height) ReadSize(ReadOnlySpan<byte> b) =>
        (BinaryPrimitives.ReadUInt32BigEndian(b[16..]), BinaryPrimitives.ReadUInt32BigEndian(b[20..]));

    /// <summary>The grey samples as PIL's convert('RGB') gives them: min(v, 255) replicated to R, G, B.</summary>
    /// <remarks>The declared size is checked against <see cref="ImageLimits"/> before anything is inflated.</remarks>
    public static RgbImage DecodeClipped(byte[] file, string name)
    {
        var (width, height) = ReadSize(file);
        ImageLimits.Check(width, height, name);
        int w = (int)width, h = (int)height;
        if (file[28] != 0) throw new MambaADException($"{name}: interlaced 16-bit grey PNG is not supported; re-save it without interlacing");
        using var idat = new MemoryStream();
        int pos = 8;
        bool ended = false;
        while (pos + 8 <= file.Length)
        {
            int len = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(pos));
            var type = file.AsSpan(pos + 4, 4);
            if (len < 0 || pos + 12L + len > file.Length) break;
            if (type.SequenceEqual("IDAT"u8)) idat.Write(file, pos + 8, len);
            if (type.SequenceEqual("IEND"u8)) { ended = true; break; }
            pos += 12 + len;
        }
        if (!ended) throw new MambaADException($"{name}: PNG is truncated (no IEND chunk)");
        int stride = checked(w * 2);
        var raw = new byte[checked((stride + 1) * h)];
        try
        {
            idat.Position = 0;
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            z.ReadExactly(raw);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new MambaADException($"{name}: PNG image data is corrupt or truncated ({e.Message})", e);
        }
        var prev = new byte[stride];
        var cur = new byte[stride];
        var rgb = new byte[w * h * 3];
        const int bpp = 2;
        for (int y = 0; y < h; y++)
        {
            int filter = raw[y * (stride + 1)];
            raw.AsSpan(y * (stride + 1) + 1, stride).CopyTo(cur);
            for (int i = 0; i < stride; i++)
            {
                int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                cur[i] = filter switch
                {
                    0 => cur[i],
                    1 => (byte)(cur[i] + a),
                    2 => (byte)(cur[i] + b),
                    3 => (byte)(cur[i] + ((a + b) >> 1)),
                    4 => (byte)(cur[i] + Paeth(a, b, c)),
                    _ => throw new MambaADException($"{name}: PNG row {y} has unknown filter type {filter}; the file is corrupt"),
                };
            }
            for (int x = 0; x < w; x++)
            {
                int v = (cur[2 * x] << 8) | cur[2 * x + 1];
                byte g = (byte)Math.Min(v, 255);
                int o = (y * w + x) * 3;
                rgb[o] = rgb[o + 1] = rgb[o + 2] = g;
            }
            (prev, cur) = (cur, prev);
        }
        return new RgbImage(w, h, rgb);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
