using System.Collections;
using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.IO;

/// <summary>
/// Reads a PyTorch zip checkpoint (<c>torch.save</c> since 1.6: <c>ARCHIVE/data.pkl</c>, whose tensors point at their
/// storages in <c>ARCHIVE/data/KEY</c>) the way <c>torch.load(weights_only=True)</c> does: a restricted pickle machine
/// (<see cref="RestrictedUnpickler"/>) that accepts only tensors, storages and plain containers. Every declared size
/// is checked before it is allocated: a storage against its zip entry, which torch.save stores uncompressed (so the
/// storages together never exceed the file), a tensor against its storage.
/// </summary>
/// <remarks>
/// Why not TorchSharp.PyBridge's reader (which still writes our checkpoints): it builds unknown Python classes as
/// dictionaries, allocates by the sizes a file declares, and can read only tensors that fill their storage.
/// </remarks>
internal static class TorchZipFile
{
    private sealed record StorageRef(string Key, ScalarType Dtype, long Numel);

    private static readonly Dictionary<string, (ScalarType Dtype, int Size)> StorageTypes = new()
    {
        ["torch.FloatStorage"] = (ScalarType.Float32, 4), ["torch.DoubleStorage"] = (ScalarType.Float64, 8),
        ["torch.HalfStorage"] = (ScalarType.Float16, 2), ["torch.BFloat16Storage"] = (ScalarType.BFloat16, 2),
        ["torch.LongStorage"] = (ScalarType.Int64, 8), ["torch.IntStorage"] = (ScalarType.Int32, 4),
        ["torch.ShortStorage"] = (ScalarType.Int16, 2), ["torch.CharStorage"] = (ScalarType.Int8, 1),
        ["torch.ByteStorage"] = (ScalarType.Byte, 1), ["torch.BoolStorage"] = (ScalarType.Bool, 1),
    };

    private const long MaxPickleBytes = 256L << 20;

    /// <summary>Reads the file's top object (nested Hashtables of tensors for a state_dict); <paramref name="label"/> names it in errors.</summary>
    /// <exception cref="MambaADException">Not a readable PyTorch zip checkpoint, or one that holds more than weights.</exception>
    public static Hashtable Read(string path, string label)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        ZipArchive zip;
        try { zip = new ZipArchive(fs, ZipArchiveMode.Read); }
        catch (InvalidDataException e) { throw new MambaADException($"{label} is not a valid zip archive ({e.Message})", e); }
        using (zip)
        {
            var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pickles.Count != 1)
                throw new MambaADException($"{label} is a zip archive but not a PyTorch checkpoint (expected one ARCHIVE/data.pkl, found {pickles.Count})");
            var prefix = pickles[0].FullName[..^"data.pkl".Length];
            if (zip.GetEntry(prefix + "byteorder") is { } order && Text(order, 16, label) is var bo && bo != "little")
                throw new MambaADException($"{label} was saved on a {bo}-endian machine; re-save it on a little-endian one");
            if (pickles[0].Length > MaxPickleBytes)
                throw new MambaADException($"{label}: its data.pkl declares {pickles[0].Length} bytes; weights files have far smaller ones");
            var pickle = Bytes(pickles[0], pickles[0].Length, label);

            var storages = new Dictionary<string, Tensor>();
            try
            {
                object? Persistent(object?[] pid)
                {
                    if (pid is not ["storage", RestrictedUnpickler.Global type, string key, string, long numel] || !StorageTypes.TryGetValue(type.ToString(), out var t) || numel < 0)
                        throw new MambaADException($"{label} has a tensor storage reference that is not ('storage', type, key, location, size)");
                    return new StorageRef(key, t.Dtype, numel);
                }

                Tensor Storage(StorageRef s)
                {
                    if (storages.TryGetValue(s.Key, out var cached)) return cached;
                    var (_, size) = StorageTypes.Values.First(v => v.Dtype == s.Dtype);
                    long bytes = s.Numel <= long.MaxValue / size ? s.Numel * size : long.MaxValue;
                    var entry = zip.GetEntry(prefix + "data/" + s.Key)
                        ?? throw new MambaADException($"{label} has no data for tensor storage '{Clip(s.Key)}' (truncated or corrupt)");
                    if (bytes != entry.Length)
                        throw new MambaADException($"{label} declares a tensor storage of {bytes} bytes, but its data entry holds {entry.Length}; the file is corrupt or crafted");
                    var data = Bytes(entry, bytes, label);
                    var tensor = empty([s.Numel], s.Dtype);
                    if (bytes > 0) tensor.bytes = data;
                    storages[s.Key] = tensor;
                    return tensor;
                }

                object? RebuildTensor(object?[] args)
                {
                    if (args is not [StorageRef storage, long offset, object?[] size, object?[] stride, ..])
                        throw new MambaADException($"{label} rebuilds a tensor from arguments that are not (storage, offset, size, stride, …)");
                    return View(Storage(storage), storage.Numel, offset, Longs(size, label), Longs(stride, label), label);
                }

                var unpickler = new RestrictedUnpickler(pickle, label, StorageTypes.Keys.ToHashSet(),
                    new Dictionary<string, Func<object?[], object?>>
                    {
                        ["collections.OrderedDict"] = args => OrderedDict(args, label),
                        ["torch._utils._rebuild_tensor_v2"] = RebuildTensor,
                        ["torch._utils._rebuild_tensor"] = RebuildTensor,
                        // A saved nn.Parameter: its data is the tensor (requires_grad and hooks do not matter for weights).
                        ["torch._utils._rebuild_parameter"] = args => args is [Tensor data, ..] ? data : throw new MambaADException($"{label} rebuilds a parameter without a tensor"),
                        ["torch._utils._rebuild_parameter_with_state"] = args => args is [Tensor data, ..] ? data : throw new MambaADException($"{label} rebuilds a parameter without a tensor"),
                    }, Persistent);
                return unpickler.Load() as Hashtable
                    ?? throw new MambaADException($"{label} holds no dict of tensors (a state_dict) at its top level");
            }
            finally
            {
                // The returned tensors are views that keep their storage alive; the storages' own handles go.
                foreach (var s in storages.Values) s.Dispose();
            }
        }
    }

    /// <summary><c>OrderedDict()</c>, or <c>OrderedDict(pairs)</c> from a list or tuple of (key, value) (TorchSharp.PyBridge writes <c>OrderedDict(())</c>).</summary>
    private static Hashtable OrderedDict(object?[] args, string label)
    {
        var d = new Hashtable();
        if (args.Length == 0) return d;
        if (args is [IList pairs])
            foreach (var pair in pairs)
            {
                if (pair is not IList { Count: 2 } kv || kv[0] is not (string or long))
                    throw new MambaADException($"{label} builds an OrderedDict from something that is not (name, value) pairs");
                d[kv[0]!] = kv[1];
            }
        else throw new MambaADException($"{label} builds an OrderedDict from arguments that are not a list of pairs");
        return d;
    }

    /// <summary>The tensor <paramref name="size"/>/<paramref name="stride"/> at <paramref name="offset"/> of a storage, when it lies inside it.</summary>
    private static Tensor View(Tensor storage, long numel, long offset, long[] size, long[] stride, string label)
    {
        if (size.Length != stride.Length || offset < 0 || size.Any(d => d < 0) || stride.Any(d => d < 0))
            throw new MambaADException($"{label} has a tensor of size ({string.Join(", ", size)}) and stride ({string.Join(", ", stride)}): not a valid layout");
        long elements = 1, last = offset;
        try
        {
            foreach (var d in size) elements = checked(elements * d);
            if (elements > 0) for (int i = 0; i < size.Length; i++) last = checked(last + (size[i] - 1) * stride[i]);
        }
        catch (OverflowException) { elements = long.MaxValue; }
        if (elements > 0 && (last >= numel || elements > numel))
            throw new MambaADException($"{label} declares a tensor of {elements} elements (size {string.Join("×", size)}) in a storage of {numel}; the file is corrupt or crafted");
        if (elements == 0) return empty(size, storage.dtype);
        var view = storage.as_strided(size, stride, offset);
        if (view.is_contiguous()) return view;
        var copy = view.contiguous();
        view.Dispose();
        return copy;
    }

    private static long[] Longs(object?[] values, string label) =>
        values.Select(v => v as long? ?? throw new MambaADException($"{label} has a tensor size or stride that is not an integer")).ToArray();

    /// <summary>
    /// The first <paramref name="count"/> bytes of an entry, read into a buffer that grows only as bytes arrive (so a
    /// length declared by the zip or the pickle allocates nothing by itself); fewer bytes than that is corruption.
    /// </summary>
    private static byte[] Bytes(ZipArchiveEntry entry, long count, string label)
    {
        if (count > Array.MaxLength || count > entry.Length)
            throw new MambaADException($"{label}: the zip entry {Clip(entry.FullName)} is expected to hold {count} bytes, more than it can; the file is corrupt or crafted");
        var buffer = new MemoryStream((int)Math.Min(count, entry.CompressedLength + 65536));
        try
        {
            using var s = entry.Open();
            var chunk = new byte[81920];
            while (buffer.Length < count)
            {
                int n = s.Read(chunk, 0, (int)Math.Min(chunk.Length, count - buffer.Length));
                if (n == 0) throw new EndOfStreamException();
                buffer.Write(chunk, 0, n);
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new MambaADException($"{label}: the zip entry {Clip(entry.FullName)} is truncated or corrupt", e);
        }
        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }

    private static string Text(ZipArchiveEntry entry, int limit, string label) =>
        Encoding.ASCII.GetString(Bytes(entry, Math.Min(limit, entry.Length), label)).Trim();

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
