using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Benchmarks;

/// <summary>
/// Seeded selective-scan inputs in the ranges the model produces (δ = softplus(Δ + bias) ≈ 0.01…1, A &lt; 0), shared
/// by the scan tests, the kernel benchmark and <c>mambaad bench</c>. Order: u, delta, A, B, C, D, deltaBias.
/// With <c>merge</c>, the shapes of <see cref="SelectiveScanReference.ScanAndMerge"/> (u (Bt, d, L), delta
/// (Bt, K, d, L)); otherwise those of <see cref="SelectiveScanReference.Scan"/>.
/// </summary>
internal static class ScanSampleInputs
{
    public static Tensor[] Create(int bt, int k, int dg, int n, int l, bool merge, int seed = 20261129)
    {
        var gen = new Generator((ulong)seed);
        long dt = (long)k * dg;
        var u = merge ? randn(bt, dg, l, generator: gen) : randn(bt, dt, l, generator: gen);
        var delta = merge ? 0.5f * randn(bt, k, dg, l, generator: gen) : 0.5f * randn(bt, dt, l, generator: gen);
        var a = SampleA(gen, dt, n);
        var b = randn(bt, k, n, l, generator: gen);
        var c = randn(bt, k, n, l, generator: gen);
        var (d, bias) = SampleDAndBias(gen, dt);
        return [u, delta, a, b, c, d, bias];
    }

    /// <summary>
    /// Inputs of <see cref="ISelectiveScan.ScanAndMergeProjected"/> in the same ranges (Δ = W·x_r ≈ 0.5·N(0, 1)):
    /// u (Bt, L, d), xDbl (Bt, L, K, R + 2N), dtWeight (K, d, R), A (K·d, N), D, deltaBias (K·d).
    /// </summary>
    public static Tensor[] CreateProjected(int bt, int k, int dg, int n, int l, int r, int seed = 20261129)
    {
        var gen = new Generator((ulong)seed);
        long dt = (long)k * dg;
        var u = randn(bt, l, dg, generator: gen);
        var xDbl = randn(bt, l, k, r + 2 * n, generator: gen);
        var w = (0.5f / MathF.Sqrt(r)) * randn(k, dg, r, generator: gen);
        var a = SampleA(gen, dt, n);
        var (d, bias) = SampleDAndBias(gen, dt);
        return [u, xDbl, w, a, d, bias];
    }

    /// <summary>A (Dt, N) &lt; 0 around the S4D-real init −[1…N]/4.</summary>
    private static Tensor SampleA(Generator gen, long dt, int n) =>
        -exp(0.3f * randn(dt, n, generator: gen)) * arange(1, n + 1, dtype: float32) / 4;

    /// <summary>D ≈ 1 and a delta bias ≈ −2 (so δ = softplus(Δ + bias) ≈ 0.01…1), drawn in that order.</summary>
    private static (Tensor D, Tensor Bias) SampleDAndBias(Generator gen, long dt)
    {
        var d = 1 + 0.2f * randn(dt, generator: gen);
        return (d, -2 + 0.5f * randn(dt, generator: gen));
    }
}
