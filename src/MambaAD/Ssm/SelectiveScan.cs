using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>Chooses the selective-scan implementation for a tensor.</summary>
public static class SelectiveScan
{
    /// <summary>The implementation to use for inputs like <paramref name="x"/>.</summary>
    public static ISelectiveScan For(Tensor x) => SelectiveScanReference.Instance;
}
