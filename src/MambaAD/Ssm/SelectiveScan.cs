using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// Chooses the selective-scan implementation: the C# kernel (<see cref="SelectiveScanCpu"/>) for float32 CPU tensors,
/// the torch-ops reference for everything else (CUDA users get a working, slower path). <see cref="ForceReference"/>
/// (or the environment variable <c>MAMBAAD_SCAN=reference</c>) forces the reference everywhere, for debugging.
/// </summary>
internal static class SelectiveScan
{
    /// <summary>Forces <see cref="SelectiveScanReference"/> for every call. Defaults to <c>MAMBAAD_SCAN=reference</c>.</summary>
    public static bool ForceReference { get; set; } =
        string.Equals(Environment.GetEnvironmentVariable("MAMBAAD_SCAN"), "reference", StringComparison.OrdinalIgnoreCase);

    /// <summary>The reference, or the kernel, which itself sends tensors it does not take to the reference.</summary>
    public static ISelectiveScan Default => ForceReference ? SelectiveScanReference.Instance : SelectiveScanCpu.Instance;

    /// <summary>The implementation for tensors like <paramref name="x"/>: the kernel for float32 CPU, else the reference.</summary>
    public static ISelectiveScan For(Tensor x) =>
        !ForceReference && SelectiveScanCpu.Handles(x) ? SelectiveScanCpu.Instance : SelectiveScanReference.Instance;
}
