using System.Collections;
using System.Collections.Concurrent;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MambaAD.Tests;

/// <summary>
/// A golden file of ../shared/golden (torch.save zip format, nested dicts), read once per test run through
/// TorchSharp.PyBridge. Paths use '/' between nested keys, e.g. <c>hss_8x8/intermediates/ss2d_out</c>.
/// </summary>
public sealed class GoldenFile
{
    private static readonly ConcurrentDictionary<string, Lazy<GoldenFile>> Cache = new();
    private readonly Hashtable root;

    private GoldenFile(string file)
    {
        var path = SharedData.Golden(file);
        root = PyTorchUnpickler.UnpickleStateDict(path);
        Detach(root); // loaded inside some test's dispose scope: the shared tensors must outlive it
    }

    private static void Detach(Hashtable table)
    {
        foreach (DictionaryEntry e in table)
        {
            if (e.Value is Tensor t) t.DetachFromDisposeScope();
            else if (e.Value is Hashtable h) Detach(h);
        }
    }

    /// <summary>The file, loaded on first use and shared by all tests (its tensors are never disposed).</summary>
    public static GoldenFile Open(string file) => Cache.GetOrAdd(file, f => new Lazy<GoldenFile>(() => new GoldenFile(f))).Value;

    public Tensor this[string path] => Node(path) as Tensor ?? throw new KeyNotFoundException($"golden entry {path} is not a tensor");

    /// <summary>A nested dict as name → tensor (e.g. a module's state_dict).</summary>
    public Dictionary<string, Tensor> Dict(string path) =>
        ((Hashtable)Node(path)).Cast<DictionaryEntry>().Where(e => e.Value is Tensor)
            .ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);

    public bool Has(string path)
    {
        try { Node(path); return true; } catch (KeyNotFoundException) { return false; }
    }

    private object Node(string path)
    {
        object node = root;
        foreach (var part in path.Split('/'))
            node = (node as Hashtable)?[part] ?? throw new KeyNotFoundException($"golden entry {path} not found (at '{part}')");
        return node;
    }
}
