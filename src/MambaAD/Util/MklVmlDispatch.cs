using static TorchSharp.torch;

namespace MambaAD.Util;

/// <summary>
/// Makes the first call of each of MKL's vector math (VML) functions a single-threaded one. libtorch computes
/// exp, log, sqrt, erf and a dozen other elementwise functions of contiguous tensors by MKL's VML, each intra-op
/// thread on its own chunk, and the MKL in libtorch 2.10 (oneMKL 2024.2) picks each function's kernel on that
/// function's first call. When the first call runs on several threads at once, one thread can run another kernel
/// for its chunk of that one call (pytorch/pytorch#188792 saw a less accurate one): SS2D's Δ bias initialisation (exp,
/// log, spec §7.4) then differs by an ulp in part of one thread's half, and training is no longer the same bit for
/// bit from the same seed, nor a resumed run the same as an uninterrupted one (docs/performance.md, phase 15).
/// <see cref="Resolve"/> calls every VML function libtorch 2.10 links (its exported vms*/vmd* symbols) once on one
/// value in float32 and float64, below libtorch's grain size: one thread, so MKL settles on the kernel it will keep.
/// </summary>
internal static class MklVmlDispatch
{
    /// <summary>libtorch's functions that MKL's VML computes (vmsAcos … vmsTrunc, and the vmd* twins for float64).</summary>
    internal static readonly (string Symbol, Func<Tensor, Tensor> Function)[] Functions =
    [
        ("Acos", t => acos(t)), ("Asin", t => asin(t)), ("Atan", t => atan(t)), ("Cos", t => cos(t)),
        ("Erf", t => erf(t)), ("ErfInv", t => erfinv(t)), ("Erfc", t => erfc(t)), ("Exp", t => exp(t)),
        ("Ln", t => log(t)), ("Log10", t => log10(t)), ("Log2", t => log2(t)), ("Sin", t => sin(t)),
        ("Sqrt", t => sqrt(t)), ("Tan", t => tan(t)), ("Tanh", t => tanh(t)), ("Trunc", t => trunc(t)),
    ];

    private static readonly Lock Gate = new();
    private static volatile bool _resolved;

    /// <summary>Once per process, before the first model's first operation (<see cref="Model.MambaADModel"/> calls it);
    /// later calls return at once.</summary>
    public static void Resolve()
    {
        if (_resolved) return;
        lock (Gate)
        {
            if (_resolved) return;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var type in new[] { ScalarType.Float32, ScalarType.Float64 })
            {
                var half = full(1, 0.5, dtype: type);   // inside every function's domain
                foreach (var (_, function) in Functions) function(half);
            }
            _resolved = true;
        }
    }
}
