using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The selective scan on CPU through the C# SIMD kernels (<see cref="ScanKernels"/>: forward, and a backward from
/// chunk-boundary states with recompute), as a torch autograd function. Inputs it does not take (not float32, not
/// CPU) go to <see cref="SelectiveScanReference"/>, as llm.c's matmul falls back to the naive one.
/// </summary>
internal sealed class SelectiveScanCpu : ISelectiveScan
{
    /// <summary>The kernel at the widest vector width the hardware accelerates.</summary>
    public static readonly SelectiveScanCpu Instance = new(null);

    private readonly int? _width;

    /// <param name="width">16, 8 or 1 (scalar) to force a kernel width (tests, benchmarks); null for the hardware's best.</param>
    internal SelectiveScanCpu(int? width)
    {
        if (width is not (null or 16 or 8 or 1)) throw new ArgumentException($"width must be 16, 8 or 1, got {width}");
        _width = width;
    }

    /// <summary>The vector width this instance runs at.</summary>
    internal int Width => _width ?? ScanKernels.HardwareWidth;

    /// <summary>True when the kernel takes these tensors: float32 on the CPU (any strides; it makes them contiguous).</summary>
    public static bool Handles(params Tensor[] ts) =>
        ts.All(t => t.dtype == ScalarType.Float32 && t.device_type == DeviceType.CPU);

    /// <summary>
    /// The Δ projection and the K directions' gathers and merge happen inside the kernels: neither pass materialises
    /// a (Bt, K, d, L) tensor, and the autograd node keeps xDbl's rows in scan order (R + 2N floats per step) and the
    /// chunk states.
    /// </summary>
    public Tensor ScanAndMergeProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        ScanShapes.CheckProjected(u, xDbl, dtWeight, A, D, deltaBias, paths);
        if (!Handles(u, xDbl, dtWeight, A, D, deltaBias) || paths.device_type != DeviceType.CPU)
            return SelectiveScanReference.Instance.ScanAndMergeProjected(u, xDbl, dtWeight, A, D, deltaBias, paths);
        bool grad = is_grad_enabled() && new[] { u, xDbl, dtWeight, A, D, deltaBias }.Any(t => t.requires_grad);
        if (grad) return ProjectedScanFunction.apply(u, xDbl, dtWeight, A, D, deltaBias, paths, Width, false);
        using var scope = NewDisposeScope();
        var y = ProjectedScanOp.Forward(u, xDbl, dtWeight, A, D, deltaBias, paths, saveStates: false, Width).Y;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// x_proj and the scan: with autograd, one node (<see cref="ProjectedScanFunction"/>) that also takes x_proj's
    /// gradients; without, x_proj then <see cref="ScanAndMergeProjected"/>.
    /// </summary>
    public Tensor ScanAndMergeXProj(Tensor u, Tensor xProjWeight, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        bool grad = is_grad_enabled() && new[] { u, xProjWeight, dtWeight, A, D, deltaBias }.Any(t => t.requires_grad);
        if (!grad || !Handles(u, xProjWeight, dtWeight, A, D, deltaBias) || paths.device_type != DeviceType.CPU)
            return XProj.ThenScan(this, u, xProjWeight, dtWeight, A, D, deltaBias, paths);
        ScanShapes.CheckXProj(u, xProjWeight, dtWeight, A, D, deltaBias, paths);
        return ProjectedScanFunction.apply(u, xProjWeight, dtWeight, A, D, deltaBias, paths, Width, true);
    }
}
