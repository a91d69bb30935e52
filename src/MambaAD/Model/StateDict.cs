using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// The state_dict in PyTorch's order: for each module its own parameters, then its own buffers, then each child in
/// registration order, recursively (spec §18; <c>../shared/golden/keys.txt</c>). Names are the official keys.
/// </summary>
public static class StateDict
{
    /// <summary>(name, tensor) pairs in PyTorch state_dict order. The tensors are the module's own (not copies).</summary>
    public static List<(string Name, Tensor Tensor)> Ordered(nn.Module module)
    {
        var result = new List<(string, Tensor)>();
        Walk(module, "", result);
        return result;
    }

    private static void Walk(nn.Module module, string prefix, List<(string, Tensor)> result)
    {
        foreach (var (name, p) in module.named_parameters(recurse: false)) result.Add((prefix + name, p));
        foreach (var (name, b) in module.named_buffers(recurse: false)) result.Add((prefix + name, b));
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
}
