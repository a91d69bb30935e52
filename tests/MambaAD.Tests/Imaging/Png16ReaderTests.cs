using System.Buffers.Binary;
using System.IO.Compression;
using MambaAD.Imaging;

namespace MambaAD.Tests.Imaging;

/// <summary>
/// The 16-bit grey PNG path without the golden files: PIL opens such a PNG as mode 'I' and convert('RGB') clips at
/// 255 (golden README), so samples 0, 255, 256, 1000, 65535, 7 become 0, 255, 255, 255, 255, 7.
/// </summary>
public class Png16ReaderTests
{
    [Fact]
    public void Sixteen_bit_grey_is_clipped_like_pil_with_row_filters()
    {
        // 3×2 image; row 0 unfiltered, row 1 with the Sub filter (each sample byte minus the byte 2 to its left).
        ushort[] v = [0, 255, 256, 1000, 65535, 7];
        var raw = new List<byte> { 0 };
        for (int x = 0; x < 3; x++) raw.AddRange([(byte)(v[x] >> 8), (byte)v[x]]);
        raw.Add(1);
        var row1 = new List<byte>();
        for (int x = 3; x < 6; x++) row1.AddRange([(byte)(v[x] >> 8), (byte)v[x]]);
        for (int i = 0; i < row1.Count; i++) raw.Add((byte)(row1[i] - (i >= 2 ? row1[i - 2] : 0)));
        var file = Png(3, 2, raw.ToArray());
        var img = ImageDecoder.DecodeRgb(file, "test.png");
        Assert.Equal((3, 2), (img.Width, img.Height));
        Assert.Equal(new byte[] { 0, 255, 255, 255, 255, 7 }, Enumerable.Range(0, 6).Select(i => img.Hwc[3 * i]).ToArray());
        Assert.Equal(img.Hwc.Where((_, i) => i % 3 == 0), img.Hwc.Where((_, i) => i % 3 == 1)); // R = G = B

        var truncated = file.AsSpan(0, file.Length - 12).ToArray(); // no IEND
        Assert.Contains("truncated", Assert.Throws<MambaADException>(() => ImageDecoder.DecodeRgb(truncated, "t.png")).Message);
    }

    private static byte[] Png(int w, int h, byte[] scanlines)
    {
        var ms = new MemoryStream();
        ms.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)w);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)h);
        ihdr[8] = 16; // bit depth
        ihdr[9] = 0;  // grey
        Chunk(ms, "IHDR", ihdr);
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(scanlines);
        Chunk(ms, "IDAT", z.ToArray());
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    // The reader does not check CRCs, so they are left zero here.
    private static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)data.Length);
        s.Write(len);
        s.Write(System.Text.Encoding.ASCII.GetBytes(type));
        s.Write(data);
        s.Write(new byte[4]);
    }
}
