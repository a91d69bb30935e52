using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.IO;

/// <summary>
/// The state_dict in PyTorch's order: for each module its own parameters, then its own buffers, then each child in
/// registration order, recursively (spec §18; <c>../shared/golden/keys.txt</c>). Names are the official keys.
/// </summary>
internal static class StateDict
{
    /// <summary>(name, tensor) pairs in PyTorch state_dict order. The tensors are the module's own (not copies).</summary>
    public static List<(string Name, Tensor Tensor)> Ordered(nn.Module module)
    {
        var result = new List<(string, Tensor)>();
        Walk(module, "", result);
        return result;
    }

    /// <summary>
    /// For <c>state_dict</c> overrides: TorchSharp's default lists every parameter of the tree before any buffer, so a
    /// module whose key order must match a PyTorch checkpoint overrides <c>state_dict</c> with this.
    /// </summary>
    public static Dictionary<string, Tensor> Collect(nn.Module module, Dictionary<string, Tensor>? destination, string? prefix)
    {
        destination ??= new Dictionary<string, Tensor>();
        string p = string.IsNullOrEmpty(prefix) ? "" : prefix + ".";
        foreach (var (name, t) in Ordered(module)) destination.TryAdd(p + name, t);
        return destination;
    }

    private static void Walk(nn.Module module, string prefix, List<(string, Tensor)> result)
    {
        foreach (var (name, p) in module.named_parameters(recurse: false)) result.Add((prefix + name, p));
        foreach (var (name, b) in module.named_buffers(recurse: false, include_nonpersistent: false)) result.Add((prefix + name, b));
        foreach (var (name, child) in module.named_children()) Walk(child, prefix + name + ".", result);
    }

    /// <summary>A shape as Python prints a tuple: <c>(64, 3, 7, 7)</c>, <c>(64,)</c>, <c>()</c>.</summary>
    public static string PythonShape(long[] shape) => shape.Length switch
    {
        0 => "()",
        1 => $"({shape[0]},)",
        _ => "(" + string.Join(", ", shape) + ")",
    };

    /// <summary>A dtype as PyTorch names it without the prefix: float32, int64, …</summary>
    public static string PythonDtype(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float64 => "float64",
        ScalarType.Int64 => "int64",
        ScalarType.Int32 => "int32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Byte => "uint8",
        ScalarType.Bool => "bool",
        _ => dtype.ToString().ToLowerInvariant(),
    };

    /// <summary>keys.txt format: <c>name&lt;TAB&gt;shape&lt;TAB&gt;dtype</c> per entry.</summary>
    public static IEnumerable<string> KeyLines(nn.Module module) =>
        Ordered(module).Select(e => $"{e.Name}\t{PythonShape(e.Tensor.shape)}\t{PythonDtype(e.Tensor.dtype)}");

    /// <summary>
    /// Copies <paramref name="source"/> into the module's tensors by official key name. Any missing, unexpected or
    /// mis-shaped key fails with one <see cref="MambaADException"/> that lists the first few of each and names
    /// <paramref name="origin"/>. A 1-element tensor fills a 0-dim entry (PyBridge reads 0-dim tensors as shape [1]).
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> source, string origin, bool strict = true)
    {
        var target = Ordered(module);
        var names = new HashSet<string>(target.Select(e => e.Name));
        var missing = target.Where(e => !source.ContainsKey(e.Name)).Select(e => e.Name).ToList();
        var unexpected = source.Keys.Where(k => !names.Contains(k)).ToList();
        var misShaped = target.Where(e => source.TryGetValue(e.Name, out var t) && !Fits(e.Tensor, t))
            .Select(e => $"{e.Name} {PythonShape(source[e.Name].shape)} ≠ {PythonShape(e.Tensor.shape)}").ToList();
        if (misShaped.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new MambaADException($"{origin} does not fit this model: {Describe(missing, "missing")}; " +
                $"{Describe(unexpected, "unexpected")}; {Describe(misShaped, "mis-shaped")}. " +
                "Check the backbone, image size, depths, scan and directions against the configuration it was trained with.");
        using var _ = no_grad();
        foreach (var (name, t) in target)
            if (source.TryGetValue(name, out var src))
                t.copy_(src.reshape(t.shape).to(t.dtype));
    }

    private static bool Fits(Tensor target, Tensor source) =>
        target.shape.SequenceEqual(source.shape) || (target.dim() == 0 && source.numel() == 1);

    private static string Describe(List<string> keys, string what) => keys.Count == 0
        ? $"0 {what}"
        : $"{keys.Count} {what} ({string.Join(", ", keys.Take(4))}{(keys.Count > 4 ? ", …" : "")})";
}
