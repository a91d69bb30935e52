using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Encoders;

/// <summary>
/// PyTorch's state_dict order: for each module, its own parameters, then its own persistent buffers, then each child
/// in registration order, recursively. TorchSharp's default lists every parameter of the whole tree before any
/// buffer, so a module whose key order must match a PyTorch checkpoint (keys.txt) overrides <c>state_dict</c> with this.
/// </summary>
internal static class PyTorchStateDict
{
    public static Dictionary<string, Tensor> Collect(nn.Module module, Dictionary<string, Tensor>? destination, string? prefix)
    {
        destination ??= new Dictionary<string, Tensor>();
        Walk(module, destination, string.IsNullOrEmpty(prefix) ? "" : prefix + ".");
        return destination;
    }

    private static void Walk(nn.Module module, Dictionary<string, Tensor> destination, string prefix)
    {
        foreach (var (name, p) in module.named_parameters(recurse: false))
            destination.TryAdd(prefix + name, p);
        foreach (var (name, b) in module.named_buffers(recurse: false, include_nonpersistent: false))
            destination.TryAdd(prefix + name, b);
        foreach (var (name, child) in module.named_children())
            Walk(child, destination, prefix + name + ".");
    }
}
