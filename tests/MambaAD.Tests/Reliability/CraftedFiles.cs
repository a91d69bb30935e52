using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using SkiaSharp;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// Writes hostile and broken files for the reliability tests, byte by byte (nothing binary is committed): images whose
/// headers lie about their size, PyTorch zip checkpoints with crafted pickles, safetensors and .npy headers.
/// </summary>
internal static class CraftedFiles
{
    // ------------------------------------------------------------------------------------------------- images

    /// <summary>A PNG from its parts: IHDR (with correct CRCs), the zlib stream of <paramref name="raw"/> (filtered rows) as IDAT, IEND.</summary>
    public static byte[] Png(uint width, uint height, byte depth, byte colourType, byte[] raw, byte interlace = 0)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = depth;
        ihdr[9] = colourType;
        ihdr[12] = interlace;
        return PngFromChunks([("IHDR", ihdr), ("IDAT", Zlib(raw)), ("IEND", [])]);
    }

    public static byte[] PngFromChunks(IEnumerable<(string Type, byte[] Data)> chunks)
    {
        var ms = new MemoryStream();
        ms.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        foreach (var (type, data) in chunks) WriteChunk(ms, type, data);
        return ms.ToArray();
    }

    public static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> be = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(be, (uint)data.Length);
        s.Write(be);
        var td = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(td);
        BinaryPrimitives.WriteUInt32BigEndian(be, Crc32(td));
        s.Write(be);
    }

    /// <summary>Recomputes the CRC of every chunk of a PNG (after its header fields were changed).</summary>
    public static void FixPngCrcs(byte[] png)
    {
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (len > png.Length - pos - 12) return;
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(pos + 8 + (int)len), Crc32(png.AsSpan(pos + 4, 4 + (int)len)));
            pos += 12 + (int)len;
        }
    }

    public static byte[] Zlib(byte[] raw)
    {
        var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        return ms.ToArray();
    }

    /// <summary>A real, valid 8-bit grey PNG of <paramref name="side"/>² black pixels (tiny on disk, huge decoded), streamed.</summary>
    public static void WriteHugeGreyPng(string path, int side)
    {
        var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Fastest, leaveOpen: true))
        {
            var row = new byte[side + 1]; // filter 0, zeros
            for (int y = 0; y < side; y++) z.Write(row);
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)side);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)side);
        ihdr[8] = 8;
        File.WriteAllBytes(path, PngFromChunks([("IHDR", ihdr), ("IDAT", idat.ToArray()), ("IEND", [])]));
    }

    /// <summary>An RGB image encoded by Skia (PNG, JPEG or WebP) with a deterministic pattern.</summary>
    public static byte[] Encoded(int w, int h, SKEncodedImageFormat format, int seed = 0)
    {
        var rng = new Random(seed);
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bmp.SetPixel(x, y, new SKColor((byte)(x * 7 + rng.Next(40)), (byte)(y * 5 + rng.Next(40)), (byte)rng.Next(256)));
        using var data = bmp.Encode(format, 90);
        return data.ToArray();
    }

    /// <summary>A 16-bit grey PNG (the own reader's path), filter 0 rows of big-endian samples.</summary>
    public static byte[] Grey16Png(int w, int h, int seed = 0)
    {
        var rng = new Random(seed);
        var raw = new byte[(2 * w + 1) * h];
        for (int y = 0; y < h; y++)
            for (int i = 1; i <= 2 * w; i++) raw[y * (2 * w + 1) + i] = (byte)rng.Next(256);
        return Png((uint)w, (uint)h, 16, 0, raw);
    }

    /// <summary>A JPEG whose SOF marker declares <paramref name="width"/>×<paramref name="height"/> (the scan data is that of a small image).</summary>
    public static byte[] JpegDeclaring(ushort width, ushort height)
    {
        var jpeg = Encoded(16, 16, SKEncodedImageFormat.Jpeg);
        for (int i = 2; i + 9 < jpeg.Length; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 5), height);
                BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 7), width);
                return jpeg;
            }
        throw new InvalidOperationException("no SOF marker in the encoded JPEG");
    }

    /// <summary>A BMP whose header declares <paramref name="width"/>×<paramref name="height"/> 24-bit pixels, with a few bytes of data.</summary>
    public static byte[] BmpDeclaring(int width, int height)
    {
        var b = new byte[54 + 64];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), b.Length);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        return b;
    }

    /// <summary>A lossless WebP (VP8L) whose header declares the largest size the format allows, 16384×16384.</summary>
    public static byte[] WebpDeclaringMax()
    {
        var vp8l = new byte[] { 0x2F, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0, 0 }; // 14-bit (w−1), 14-bit (h−1), alpha 0, version 0
        var ms = new MemoryStream();
        ms.Write("RIFF"u8);
        ms.Write(BitConverter.GetBytes(4 + 8 + vp8l.Length));
        ms.Write("WEBPVP8L"u8);
        ms.Write(BitConverter.GetBytes(vp8l.Length));
        ms.Write(vp8l);
        return ms.ToArray();
    }

    /// <summary>A GIF whose screen and frame declare 65535×65535 pixels, with a tiny LZW stream.</summary>
    public static byte[] GifDeclaringMax()
    {
        var ms = new MemoryStream();
        ms.Write("GIF89a"u8);
        ms.Write([0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0, 0]);              // screen 65535², global colour table of 2
        ms.Write([0, 0, 0, 255, 255, 255]);
        ms.Write([0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]);     // image descriptor 65535²
        ms.Write([2, 2, 0x4C, 0x01, 0, 0x3B]);                       // LZW min size 2, one sub-block, trailer
        return ms.ToArray();
    }

    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    // ------------------------------------------------------------------------------------------------- pickles

    /// <summary>Builds a pickle instruction by instruction (protocol 2, as torch.save writes).</summary>
    public sealed class Pickle
    {
        private readonly MemoryStream _s = new();

        public Pickle() => _s.Write([0x80, 2]);

        public Pickle Op(char op) { _s.WriteByte((byte)op); return this; }
        public Pickle Op(byte op) { _s.WriteByte(op); return this; }
        public Pickle Global(string module, string name) { _s.WriteByte((byte)'c'); _s.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); return this; }
        public Pickle Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            _s.WriteByte((byte)'X');
            _s.Write(BitConverter.GetBytes(b.Length));
            _s.Write(b);
            return this;
        }
        /// <summary>A BINUNICODE that declares <paramref name="declared"/> bytes but holds none.</summary>
        public Pickle StrDeclaring(uint declared) { _s.WriteByte((byte)'X'); _s.Write(BitConverter.GetBytes(declared)); return this; }
        public Pickle Int(long v)
        {
            if (v is >= 0 and < 256) { _s.WriteByte((byte)'K'); _s.WriteByte((byte)v); }
            else if (v is >= int.MinValue and <= int.MaxValue) { _s.WriteByte((byte)'J'); _s.Write(BitConverter.GetBytes((int)v)); }
            else { _s.WriteByte(0x8a); _s.WriteByte(8); _s.Write(BitConverter.GetBytes(v)); }
            return this;
        }
        public Pickle Mark() => Op('(');
        public Pickle Tuple() => Op('t');
        public Pickle EmptyDict() => Op('}');
        public Pickle EmptyTuple() => Op(')');
        public Pickle SetItem() => Op('s');
        public Pickle Reduce() => Op('R');
        public Pickle False() => Op(0x89);

        /// <summary>Pushes <c>_rebuild_tensor_v2(storage(key, float, numel), offset, size, stride, False, OrderedDict())</c>.</summary>
        public Pickle Tensor(string key, long numel, long[] size, long[] stride, long offset = 0, string storageType = "FloatStorage")
        {
            Global("torch._utils", "_rebuild_tensor_v2");
            Mark();
            Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Tuple().Op('Q');
            Int(offset);
            Mark(); foreach (var d in size) Int(d); Tuple();
            Mark(); foreach (var d in stride) Int(d); Tuple();
            False();
            Global("collections", "OrderedDict").EmptyTuple().Reduce();
            Tuple().Reduce();
            return this;
        }

        public byte[] Stop() { _s.WriteByte((byte)'.'); return _s.ToArray(); }
    }

    /// <summary>A torch.save-style zip: <c>archive/data.pkl</c>, <c>archive/data/KEY</c> (stored, uncompressed), <c>archive/version</c>.</summary>
    public static void WriteTorchZip(string path, byte[] pickle, IReadOnlyDictionary<string, byte[]>? storages = null,
        CompressionLevel storageCompression = CompressionLevel.NoCompression)
    {
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Add(string name, byte[] data, CompressionLevel level)
        {
            var e = zip.CreateEntry(name, level);
            using var s = e.Open();
            s.Write(data);
        }
        Add("archive/data.pkl", pickle, CompressionLevel.NoCompression);
        foreach (var (k, v) in storages ?? new Dictionary<string, byte[]>()) Add($"archive/data/{k}", v, storageCompression);
        Add("archive/version", "3\n"u8.ToArray(), CompressionLevel.NoCompression);
    }

    /// <summary>Rewrites the uncompressed size that the local and central zip headers of <paramref name="entry"/> declare.</summary>
    public static void PatchZipLength(string path, string entry, uint length)
    {
        var b = File.ReadAllBytes(path);
        var name = Encoding.ASCII.GetBytes(entry);
        int patched = 0;
        for (int i = 0; i + 46 < b.Length; i++)
        {
            uint sig = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(i));
            if (sig == 0x04034b50 && b.AsSpan(i + 30, name.Length).SequenceEqual(name)) { BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(i + 22), length); patched++; }
            if (sig == 0x02014b50 && b.AsSpan(i + 46, name.Length).SequenceEqual(name)) { BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(i + 24), length); patched++; }
        }
        if (patched != 2) throw new InvalidOperationException($"patched {patched} headers of {entry}");
        File.WriteAllBytes(path, b);
    }

    /// <summary>A small valid state_dict file {"w": float tensor of 4 values} built the same way as the hostile ones.</summary>
    public static void WriteValidStateDict(string path, string key = "w")
    {
        var p = new Pickle().EmptyDict().Str(key).Tensor("0", 4, [2, 2], [2, 1]).SetItem().Stop();
        WriteTorchZip(path, p, new Dictionary<string, byte[]> { ["0"] = new byte[16] });
    }

    // ------------------------------------------------------------------------------------------------- safetensors, npy

    public static byte[] Safetensors(string headerJson, byte[] data, ulong? declaredHeaderLength = null)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes(declaredHeaderLength ?? (ulong)h.Length));
        ms.Write(h);
        ms.Write(data);
        return ms.ToArray();
    }

    /// <summary>A .npy of version <paramref name="major"/> with the given header text and data, optionally declaring another header length.</summary>
    public static byte[] Npy(string header, byte[] data, int major = 1, uint? declaredHeaderLength = null)
    {
        var h = Encoding.Latin1.GetBytes(header);
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)(declaredHeaderLength ?? (uint)h.Length)));
        else ms.Write(BitConverter.GetBytes(declaredHeaderLength ?? (uint)h.Length));
        ms.Write(h);
        ms.Write(data);
        return ms.ToArray();
    }

    public static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();
}
