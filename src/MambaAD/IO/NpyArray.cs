using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace MambaAD.IO;

/// <summary>
/// A NumPy array read from or written to the <c>.npy</c> format (format versions 1.0, 2.0 and 3.0): a magic string,
/// a Python-dict header (<c>descr</c>, <c>fortran_order</c>, <c>shape</c>) and the raw little-endian C-order data.
/// Numeric dtypes (bool, int8…int64, uint8…uint64, float32, float64) and unicode strings (<c>&lt;U n</c>) are read;
/// float32 is written. Fortran order and big-endian data are rejected with a message naming the file.
/// </summary>
internal sealed class NpyArray
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The NumPy dtype string without byte order, e.g. <c>f4</c>, <c>u1</c>, <c>U5</c>.</summary>
    public string DType { get; }

    /// <summary>The shape; empty for a 0-d array.</summary>
    public int[] Shape { get; }

    /// <summary>The raw element bytes in C order, little-endian.</summary>
    public byte[] Data { get; }

    /// <summary>The number of elements (product of <see cref="Shape"/>).</summary>
    public long Length => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Where the array was read from (for errors about its values), or null for one made in memory.</summary>
    private readonly string? _origin;

    private NpyArray(string dtype, int[] shape, byte[] data, string? origin = null) { DType = dtype; Shape = shape; Data = data; _origin = origin; }

    private int ItemSize => DType[0] == 'U' ? 4 * int.Parse(DType.AsSpan(1), CultureInfo.InvariantCulture)
        : DType == "b1" ? 1 : int.Parse(DType.AsSpan(1), CultureInfo.InvariantCulture);

    /// <summary>A float32 array over <paramref name="values"/> (copied) with the given shape.</summary>
    public static NpyArray FromFloats(ReadOnlySpan<float> values, params int[] shape)
    {
        if (shape.Aggregate(1L, (a, b) => a * b) != values.Length)
            throw new ArgumentException($"shape ({string.Join(",", shape)}) does not hold {values.Length} values");
        var data = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        return new NpyArray("f4", (int[])shape.Clone(), data);
    }

    /// <summary>Reads a <c>.npy</c> file. Errors name the file and what was expected.</summary>
    public static NpyArray Read(string path)
    {
        try
        {
            using var fs = File.OpenRead(path);
            return Read(fs, path);
        }
        catch (IOException e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new MambaADException($"{path}: file not found (expected a NumPy .npy file)", e);
        }
    }

    /// <summary>The longest header read: NumPy itself refuses headers over 10,000 bytes unless told otherwise.</summary>
    private const int MaxHeaderBytes = 1 << 16;

    /// <summary>
    /// Reads one array from a stream; <paramref name="name"/> is used in error messages. Every declared length (the
    /// header's, the data's) is checked against <paramref name="available"/> — the bytes the stream holds, its length
    /// when it can seek — before anything of that size is allocated.
    /// </summary>
    public static NpyArray Read(Stream stream, string name, long? available = null)
    {
        available ??= stream.CanSeek ? stream.Length - stream.Position : null;
        var head = ReadExactly(stream, 8, name);
        if (!head.AsSpan(0, 6).SequenceEqual(Magic))
            throw Bad(name, "does not start with the NumPy magic \\x93NUMPY");
        int major = head[6];
        long headerLen = major switch
        {
            1 => BinaryPrimitives.ReadUInt16LittleEndian(ReadExactly(stream, 2, name)),
            2 or 3 => BinaryPrimitives.ReadUInt32LittleEndian(ReadExactly(stream, 4, name)),
            _ => throw Bad(name, $"has .npy format version {major}.{head[7]}; versions 1, 2 and 3 are read"),
        };
        long used = major == 1 ? 10 : 12;
        if (headerLen > MaxHeaderBytes || headerLen > available - used)
            throw Bad(name, $"declares a header of {headerLen} bytes{(available is { } a ? $" in a file of {a}" : "")}; it is corrupt");
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(ReadExactly(stream, (int)headerLen, name));
        string descr = HeaderValue(header, "descr", name).Trim('\'', '"');
        string fortran = HeaderValue(header, "fortran_order", name);
        string shapeText = HeaderValue(header, "shape", name);
        if (fortran != "False") throw Bad(name, "is in Fortran order; save it with np.ascontiguousarray first");
        if (descr.Length < 2) throw Bad(name, $"has dtype '{descr}'; little-endian bool, integer, float32/float64 or unicode arrays are read");
        char order = descr[0];
        string dtype = descr[1..];
        bool known = dtype is "b1" or "i1" or "u1" or "i2" or "u2" or "i4" or "u4" or "i8" or "u8" or "f4" or "f8"
                     || (dtype.Length is > 1 and < 8 && dtype[0] == 'U' && dtype[1..].All(char.IsAsciiDigit) && int.Parse(dtype.AsSpan(1), CultureInfo.InvariantCulture) > 0);
        if (!known || order is not ('<' or '|' or '='))
            throw Bad(name, $"has dtype '{descr}'; little-endian bool, integer, float32/float64 or unicode arrays are read");
        if (order == '=' && !BitConverter.IsLittleEndian) throw Bad(name, "is in native big-endian order");
        var shape = shapeText.Trim('(', ')').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
                : throw Bad(name, $"has an unreadable shape {shapeText}")).ToArray();
        var array = new NpyArray(dtype, shape, [], name);
        long bytes;
        try { bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * array.ItemSize); }
        catch (OverflowException) { throw Bad(name, $"declares the shape {shapeText}, more elements than any file holds"); }
        if (bytes > Array.MaxLength) throw Bad(name, $"holds {bytes} bytes, more than one array can");
        if (bytes > available - used - headerLen)
            throw new MambaADException($"{name}: truncated .npy file (the header declares {bytes} bytes of data, the file holds {available - used - headerLen})");
        return new NpyArray(dtype, shape, ReadExactly(stream, (int)bytes, name), name);
    }

    /// <summary>Writes this array as a version-1.0 <c>.npy</c> file atomically.</summary>
    public void Write(string path) => AtomicFile.Write(path, Write);

    /// <summary>Writes this array in the <c>.npy</c> format to a stream.</summary>
    public void Write(Stream stream)
    {
        string shape = Shape.Length == 1 ? $"({Shape[0]},)" : $"({string.Join(", ", Shape)})";
        char order = DType is "b1" or "i1" or "u1" ? '|' : '<';
        string dict = $"{{'descr': '{order}{DType}', 'fortran_order': False, 'shape': {shape}, }}";
        // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64 bytes.
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        var header = dict + new string(' ', padded - total) + "\n";
        if (header.Length > ushort.MaxValue) throw new ArgumentException("shape too long for a version-1.0 header");
        stream.Write(Magic);
        stream.Write([1, 0]);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        stream.Write(len);
        stream.Write(Encoding.Latin1.GetBytes(header));
        stream.Write(Data);
    }

    /// <summary>All elements converted to double (numeric dtypes only).</summary>
    /// <exception cref="MambaADException">An element is NaN or infinite: maps and labels must be finite numbers.</exception>
    public double[] ToDoubleArray()
    {
        var d = Data.AsSpan();
        var r = new double[Length];
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = DType switch
            {
                "f4" => BinaryPrimitives.ReadSingleLittleEndian(d[(i * 4)..]),
                "f8" => BinaryPrimitives.ReadDoubleLittleEndian(d[(i * 8)..]),
                "b1" or "u1" => d[i],
                "i1" => (sbyte)d[i],
                "i2" => BinaryPrimitives.ReadInt16LittleEndian(d[(i * 2)..]),
                "u2" => BinaryPrimitives.ReadUInt16LittleEndian(d[(i * 2)..]),
                "i4" => BinaryPrimitives.ReadInt32LittleEndian(d[(i * 4)..]),
                "u4" => BinaryPrimitives.ReadUInt32LittleEndian(d[(i * 4)..]),
                "i8" => BinaryPrimitives.ReadInt64LittleEndian(d[(i * 8)..]),
                "u8" => BinaryPrimitives.ReadUInt64LittleEndian(d[(i * 8)..]),
                _ => throw new InvalidOperationException($"dtype {DType} is not numeric"),
            };
            if (!double.IsFinite(r[i])) throw NonFinite(i, r[i]);
        }
        return r;
    }

    /// <summary>All elements as float32 (exact for f4; rounded for f8 and wide integers).</summary>
    /// <exception cref="MambaADException">An element is NaN or infinite.</exception>
    public float[] ToFloatArray()
    {
        if (DType == "f4")
        {
            var r = new float[Length];
            for (int i = 0; i < r.Length; i++)
                if (!float.IsFinite(r[i] = BinaryPrimitives.ReadSingleLittleEndian(Data.AsSpan(i * 4)))) throw NonFinite(i, r[i]);
            return r;
        }
        return ToDoubleArray().Select(v => (float)v).ToArray();
    }

    /// <summary>All elements as strings (unicode dtype only), trailing NULs removed as NumPy does.</summary>
    public string[] ToStringArray()
    {
        if (DType[0] != 'U') throw new InvalidOperationException($"dtype {DType} is not a unicode string");
        int size = ItemSize;
        var r = new string[Length];
        for (int i = 0; i < r.Length; i++) r[i] = Encoding.UTF32.GetString(Data, i * size, size).TrimEnd('\0');
        return r;
    }

    /// <summary>Reads every array of an <c>.npz</c> archive (a zip of <c>.npy</c> files), keyed by name without ".npy".</summary>
    public static Dictionary<string, NpyArray> ReadNpz(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var result = new Dictionary<string, NpyArray>();
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                var key = e.FullName.EndsWith(".npy", StringComparison.Ordinal) ? e.FullName[..^4] : e.FullName;
                // Deflate expands at most ~1032:1, so a declared length beyond that is a lie (a zip bomb).
                result[key] = Read(s, $"{path}:{e.FullName}", Math.Min(e.Length, e.CompressedLength * 1032L + 1024));
            }
            return result;
        }
        catch (InvalidDataException e)
        {
            throw new MambaADException($"{path}: not a valid .npz (zip) archive: {e.Message}", e);
        }
    }

    private static string HeaderValue(string header, string key, string name)
    {
        int k = header.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (k < 0) k = header.IndexOf($"\"{key}\"", StringComparison.Ordinal);
        if (k < 0) throw Bad(name, $"has no '{key}' in its header");
        int colon = header.IndexOf(':', k);
        int start = colon + 1;
        while (start < header.Length && header[start] == ' ') start++;
        if (colon < 0 || start >= header.Length) throw Bad(name, $"has an unreadable '{key}' in its header");
        int end = header[start] == '(' ? header.IndexOf(')', start) + 1 : header.IndexOfAny([',', '}'], start);
        if (end <= start) throw Bad(name, $"has an unreadable '{key}' in its header");
        return header[start..end].Trim();
    }

    private static byte[] ReadExactly(Stream s, int n, string name)
    {
        var b = new byte[n];
        try { s.ReadExactly(b); }
        catch (EndOfStreamException e) { throw new MambaADException($"{name}: truncated .npy file (expected {n} more bytes)", e); }
        return b;
    }

    private MambaADException NonFinite(long index, double value) =>
        new($"{_origin ?? "array"}: element {index} is {(double.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf")}; only finite numbers are read (an anomaly map with NaN or Inf has no ranking)");

    private static MambaADException Bad(string name, string what) => new($"{name}: {what} (expected a NumPy .npy file)");
}
