using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MambaAD.IO;

/// <summary>
/// Reads and writes PyTorch tensor files: zip-format <c>torch.save</c> files (.pth/.pt) through TorchSharp.PyBridge,
/// and .safetensors. Errors a user can cause name the file, its role and the fix.
/// </summary>
internal static class PyTorchFile
{
    /// <summary>
    /// Reads a file into nested Hashtables of tensors (dicts nest; PyBridge reads 0-dim tensors as shape [1]).
    /// <paramref name="role"/> names the file in messages, e.g. "encoder weights file" or "checkpoint".
    /// </summary>
    public static Hashtable Read(string path, string role)
    {
        if (!File.Exists(path)) throw new MambaADException($"{role} {path} does not exist");
        var head = new byte[9];
        int n;
        using (var fs = File.OpenRead(path)) n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        bool zip = n >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4;
        // safetensors: an 8-byte little-endian header length, then a JSON header.
        bool safetensors = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || (n == 9 && head[8] == (byte)'{');
        try
        {
            if (safetensors)
            {
                var table = new Hashtable();
                foreach (var (k, v) in Safetensors.LoadStateDict(path)) table[k] = v;
                return table;
            }
            if (!zip)
            {
                if (n >= 1 && head[0] == 0x80) // a pickle protocol opcode: torch.save's pre-1.6 format
                    throw new MambaADException($"{role} {path} was saved in PyTorch's legacy format; re-save it with torch.save(torch.load(f), f, _use_new_zipfile_serialization=True)");
                throw new MambaADException($"{role} {path} is neither a PyTorch zip checkpoint (.pth/.pt) nor a .safetensors file");
            }
            return PyTorchUnpickler.UnpickleStateDict(path);
        }
        catch (MambaADException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new MambaADException($"{role} {path} could not be read ({e.GetType().Name}: {e.Message.Split('\n')[0].Trim()})", e);
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

    /// <summary>Disposes every tensor in nested Hashtables read by <see cref="Read"/>.</summary>
    public static void DisposeAll(Hashtable table)
    {
        foreach (var v in table.Values)
            if (v is Tensor t) t.Dispose();
            else if (v is Hashtable h) DisposeAll(h);
    }
}
