using System.Runtime.InteropServices;
using TorchSharp;

namespace MambaAD.Util;

/// <summary>
/// Turns libtorch's NNPACK convolutions off (torch.backends.nnpack.enabled = False, which TorchSharp does not expose).
/// libtorch asks NNPACK for convolutions oneDNN declines, and where NNPACK cannot initialise (a VM that hides the CPU's
/// cache sizes: "Unsupported hardware") it logs a warning to stderr on every such call, thousands per run, which
/// buries the tool's own messages. With NNPACK off those convolutions take libtorch's own kernels (docs/performance.md,
/// "Issue 14, phase 7"). A process-wide policy: applications call <see cref="Disable"/>; the library never does.
/// </summary>
internal static unsafe class Nnpack
{
    /// <summary>at::globalContext().setUserEnabledNNPACK(false), through libtorch's exported C++ symbols (Itanium
    /// ABI: Linux); elsewhere, or if the symbols are missing, nothing happens.</summary>
    /// <returns>Whether NNPACK is now off.</returns>
    public static bool Disable()
    {
        if (!OperatingSystem.IsLinux()) return false;
        _ = torch.get_num_threads();   // loads libtorch
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory, out var lib)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var globalContext)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled)
            || !NativeLibrary.TryGetExport(lib, "_ZNK2at7Context17userEnabledNNPACKEv", out var enabled))
            return false;
        var context = ((delegate* unmanaged<IntPtr>)globalContext)();
        ((delegate* unmanaged<IntPtr, byte, void>)setEnabled)(context, 0);
        return ((delegate* unmanaged<IntPtr, byte>)enabled)(context) == 0;
    }
}
