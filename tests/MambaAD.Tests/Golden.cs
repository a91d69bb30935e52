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

/// <summary>The one tensor comparison of the test suite: |actual − expected| ≤ atol + rtol·|expected|, elementwise.</summary>
public static class Close
{
    /// <summary>Forward outputs of a float32 port (golden README): rtol 1e-4, atol 1e-4·max|ref|.</summary>
    public static void Forward(Tensor actual, Tensor expected, string name) => Check(actual, expected, 1e-4, 1e-4, name);

    /// <summary>
    /// Asserts closeness with atol = <paramref name="atolOfMax"/>·max|expected|. The failure message gives the max
    /// absolute and relative difference and where it is.
    /// </summary>
    public static void Check(Tensor actual, Tensor expected, double rtol, double atolOfMax, string name)
    {
        using var scope = NewDisposeScope();
        Assert.True(actual.shape.SequenceEqual(expected.shape),
            $"{name}: shape ({string.Join(", ", actual.shape)}) ≠ expected ({string.Join(", ", expected.shape)})");
        var a = actual.detach().to(float64).cpu();
        var e = expected.detach().to(float64).cpu();
        double maxRef = e.abs().max().item<double>();
        double atol = atolOfMax * maxRef;
        var diff = (a - e).abs();
        var excess = diff - (atol + rtol * e.abs());
        double worst = excess.max().item<double>();
        if (worst > 0 || double.IsNaN(worst) || a.isnan().any().item<bool>())
        {
            long at = diff.argmax().item<long>();
            Assert.Fail($"{name}: max |Δ| = {diff.max().item<double>():G4} at flat index {at} (max |ref| {maxRef:G4}, " +
                        $"allowed {atol:G3} + {rtol:G3}·|ref|)");
        }
    }

    /// <summary>The largest |actual − expected| divided by max|expected|: for reporting residuals.</summary>
    public static double RelativeToMax(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var e = expected.detach().to(float64).cpu();
        return (actual.detach().to(float64).cpu() - e).abs().max().item<double>() / e.abs().max().item<double>();
    }
}
