using static TorchSharp.torch;

namespace MambaAD.Tests.Ssm;

internal static class FiniteDifferences
{
    /// <summary>
    /// Central differences (loss(x + eps) − loss(x − eps)) / 2eps for every element of <paramref name="x"/> (a
    /// contiguous leaf, perturbed in place and restored), as a float64 tensor of x's shape.
    /// </summary>
    public static Tensor Central(Tensor x, Func<double> loss, double eps)
    {
        var flat = x.flatten();
        var fd = zeros(flat.numel(), dtype: ScalarType.Float64);
        for (long j = 0; j < flat.numel(); j++)
        {
            using var inner = NewDisposeScope();
            double orig = flat[j].to(ScalarType.Float64).item<double>();
            flat[j] = orig + eps;
            double lp = loss();
            flat[j] = orig - eps;
            double lm = loss();
            flat[j] = orig;
            fd[j] = (lp - lm) / (2 * eps);
        }
        return fd.reshape(x.shape);
    }
}
