using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MambaAD.IO;

/// <summary>
/// Reads and writes PyTorch tensor files: zip-format <c>torch.save</c> files (.pth/.pt) and .safetensors. Reading
/// accepts only weights (<see cref="TorchZipFile"/>, <see cref="SafetensorsHeader"/>); writing goes through
/// TorchSharp.PyBridge. Errors a user can cause name the file, its role and the fix.
/// </summary>
internal static class PyTorchFile
{
    /// <summary>
    /// Reads a file into nested Hashtables of tensors (dicts nest), as <c>torch.load(weights_only=True)</c> would:
    /// zip-format <c>.pth</c>/<c>.pt</c> through <see cref="TorchZipFile"/>, <c>.safetensors</c> after its header is
    /// checked (<see cref="SafetensorsHeader"/>). <paramref name="role"/> names the file in messages, e.g. "encoder
    /// weights file" or "checkpoint".
    /// </summary>
    /// <exception cref="MambaADException">Missing, not a tensor file, corrupt, or holding more than weights; one line naming the file.</exception>
    public static Hashtable Read(string path, string role)
    {
        if (!File.Exists(path)) throw new MambaADException($"{role} {path} does not exist");
        var label = $"{role} {path}";
        var head = new byte[9];
        int n;
        try
        {
            using (var fs = File.OpenRead(path)) n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (IoError.Is(e))
        {
            throw new MambaADException($"{label} cannot be read ({IoError.Reason(e)})", e);
        }
        bool zip = n >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4;
        // safetensors: an 8-byte little-endian header length, then a JSON header.
        bool safetensors = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || (n == 9 && head[8] == (byte)'{');
        try
        {
            if (safetensors)
            {
                SafetensorsHeader.Validate(path, label);
                var table = new Hashtable();
                foreach (var (k, v) in Safetensors.LoadStateDict(path)) table[k] = v;
                return table;
            }
            if (!zip)
            {
                if (n >= 1 && head[0] == 0x80) // a pickle protocol opcode: torch.save's pre-1.6 format
                    throw new MambaADException($"{label} was saved in PyTorch's legacy format; re-save it with torch.save(torch.load(f), f, _use_new_zipfile_serialization=True)");
                throw new MambaADException($"{label} is neither a PyTorch zip checkpoint (.pth/.pt) nor a .safetensors file");
            }
            return TorchZipFile.Read(path, label);
        }
        catch (MambaADException) { throw; }
        catch (Exception e) when (IoError.Is(e))
        {
            throw new MambaADException($"{label} cannot be read ({IoError.Reason(e)})", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The checks above leave nothing a file can cause here; say so without the library's internals.
            throw new MambaADException($"{label} could not be read: it is damaged or not a tensor file", e);
        }
    }

    /// <summary>Writes a state_dict atomically as a zip-format PyTorch file that <c>torch.load</c> reads, in the given order.</summary>
    public static void WriteStateDict(string path, IEnumerable<(string Name, Tensor Tensor)> entries)
    {
        var dict = new Dictionary<string, Tensor>();
        foreach (var (name, t) in entries) dict[name] = t;
        // PyBridge closes the stream it writes: pickle to memory, then write the bytes atomically.
        var buffer = new MemoryStream();
        PyTorchPickler.PickleStateDict(buffer, dict);
        AtomicFile.WriteAllBytes(path, buffer.ToArray());
    }

    /// <summary>Disposes every tensor in what <see cref="Read"/> returned (nested dicts, lists and tuples, shared or cyclic references included).</summary>
    public static void DisposeAll(Hashtable table)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object>([table]);
        while (pending.Count > 0)
        {
            var item = pending.Pop();
            if (!seen.Add(item)) continue;
            switch (item)
            {
                case Tensor t: t.Dispose(); break;
                case Hashtable h: foreach (var v in h.Values) if (v is not null) pending.Push(v); break;
                case IEnumerable<object?> list: foreach (var v in list) if (v is not null) pending.Push(v); break;
            }
        }
    }
}
