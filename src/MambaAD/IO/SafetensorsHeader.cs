using System.Buffers.Binary;
using System.Text.Json;

namespace MambaAD.IO;

/// <summary>
/// Checks a <c>.safetensors</c> file's header against the file before any tensor is allocated (an 8-byte
/// little-endian header length, a JSON header of <c>{name: {dtype, shape, data_offsets}}</c>, then the data): the
/// header fits in the file and in the format's 100 MB, every tensor's bytes are its shape times its element size and
/// lie inside the data. A file that passes reads with no allocation larger than the file.
/// </summary>
internal static class SafetensorsHeader
{
    private const long MaxHeaderBytes = 100_000_000; // the format's own limit

    private static readonly Dictionary<string, int> ElementSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>Validates the header of <paramref name="path"/>; <paramref name="label"/> names the file in errors.</summary>
    /// <exception cref="MambaADException">The header does not describe the file.</exception>
    public static void Validate(string path, string label)
    {
        using var fs = File.OpenRead(path);
        long fileLength = fs.Length;
        Span<byte> head = stackalloc byte[8];
        if (fs.ReadAtLeast(head, 8, throwOnEndOfStream: false) < 8) throw Bad(label, "is shorter than a safetensors header");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (headerLength > MaxHeaderBytes || headerLength > (ulong)(fileLength - 8) || headerLength < 2)
            throw Bad(label, $"declares a header of {headerLength} bytes in a file of {fileLength}");
        var json = new byte[headerLength];
        fs.ReadExactly(json);
        long dataLength = fileLength - 8 - (long)headerLength;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad(label, $"has a header that is not valid JSON ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(label, "has a header that is not a JSON object");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object || entry.Value.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.String))
                        throw Bad(label, "has __metadata__ that is not a map of strings");
                    continue;
                }
                Tensor(entry.Name, entry.Value, dataLength, label);
            }
        }
    }

    private static void Tensor(string name, JsonElement t, long dataLength, string label)
    {
        string what = $"tensor '{(name.Length <= 60 ? name : name[..60] + "…")}'";
        if (t.ValueKind != JsonValueKind.Object
            || !t.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !t.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
            || !t.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Bad(label, $"has a {what} without dtype, shape and data_offsets");
        if (!ElementSizes.TryGetValue(dtype.GetString()!, out int size))
            throw Bad(label, $"has a {what} of dtype {dtype.GetString()}; {string.Join(", ", ElementSizes.Keys)} are read");
        long elements = 1;
        foreach (var d in shape.EnumerateArray())
        {
            if (!d.TryGetInt64(out long n) || n < 0) throw Bad(label, $"has a {what} with a dimension that is not a size");
            elements = n == 0 || elements == 0 ? 0 : elements > long.MaxValue / n ? long.MaxValue : elements * n;
        }
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin || end > dataLength)
            throw Bad(label, $"has a {what} whose data lies outside the file");
        if (elements > (end - begin) / size || elements * size != end - begin)
            throw Bad(label, $"declares a {what} of {(elements == long.MaxValue ? "more than 2⁶³" : elements.ToString())} elements in {end - begin} bytes");
    }

    private static MambaADException Bad(string label, string what) => new($"{label} {what} (not a valid .safetensors file)");
}
