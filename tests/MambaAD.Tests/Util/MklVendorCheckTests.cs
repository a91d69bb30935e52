using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using MambaAD.Util;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests.Util;

/// <summary>
/// The MKL vendor-check bypass (Util/MklVendorCheck, applied to the whole test process by ProcessSetup as the CLI
/// applies it): it takes effect exactly where it should (AMD CPUs with AVX2), and the GEMMs MKL then runs are right at
/// every shape the model gives them, forward and backward, against float64. A VM that hides the CPU's cache sizes made oneDNN's blocking
/// wrong at some shapes (docs/performance.md, phase 7); MKL's Intel path on an AMD CPU must not do the same.
/// </summary>
public unsafe class MklVendorCheckTests
{
    private static bool AmdWithAvx2()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(vendor)) == "AuthenticAMD"
            && Avx2.IsSupported && Fma.IsSupported;
    }

    [Fact]
    public void The_vendor_check_answers_yes_exactly_on_AMD_with_AVX2()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64) return;
        bool expected = AmdWithAvx2() && Environment.GetEnvironmentVariable(MklVendorCheck.OptOutVariable) != "keep";
        Assert.Equal(expected, MklVendorCheck.Bypass());   // a second call: the first was ProcessSetup's
        Assert.True(NativeLibrary.TryLoad("libtorch_cpu.so", typeof(torch).Assembly, DllImportSearchPath.AssemblyDirectory, out var lib));
        Assert.True(NativeLibrary.TryGetExport(lib, "mkl_serv_intel_cpu_true", out var check),
            "mkl_serv_intel_cpu_true is not exported by libtorch_cpu.so (a libtorch whose MKL renamed it?)");
        int answer = ((delegate* unmanaged<int>)check)();
        if (expected) Assert.Equal(1, answer);
        Assert.Contains(expected ? "vendor check bypassed" : "MKL's", MklVendorCheck.State);
    }

    /// <summary>SS2D's in_proj, x_proj and out_proj and the LSS 1×1 convs (as Linear) at the four decoder stages.</summary>
    public static IEnumerable<object[]> Shapes()
    {
        foreach (var (side, d) in new[] { (8, 512), (16, 256), (32, 128), (64, 64) })
            foreach (var (k, n) in new[] { (d, 4 * d), (2 * d, d / 16 + 32), (2 * d, d), (d, d), (3 * d, d) })
                foreach (int batch in new[] { 1, 2, 8, 16 })
                    yield return [batch * side * side, k, n];
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Linear_and_its_gradients_agree_with_float64(int rows, int k, int n)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(rows + 7 * k + 13 * n));
        var x = randn(rows, k, generator: gen).requires_grad_(true);
        var w = (randn(n, k, generator: gen) / Math.Sqrt(k)).requires_grad_(true);
        var g = randn(rows, n, generator: gen);
        var y = nn.functional.linear(x, w);
        var (dx, dw) = (torch.autograd.grad([y], [x, w], [g]) is var grads ? (grads[0], grads[1]) : default);

        var (x64, w64, g64) = (x.detach().to(float64), w.detach().to(float64), g.to(float64));
        AssertClose(y, x64.matmul(w64.t()), x64.abs().matmul(w64.abs().t()), "y = x·Wᵀ");
        AssertClose(dx, g64.matmul(w64), g64.abs().matmul(w64.abs()), "dx = g·W");
        AssertClose(dw, g64.t().matmul(x64), g64.abs().t().matmul(x64.abs()), "dW = gᵀ·x");
    }

    /// <summary>Each element within 1e-5 of the sum of its products' magnitudes: float32 rounding stays orders of
    /// magnitude below that at these depths, a wrong blocking (a skipped or doubled block) far above it.</summary>
    private static void AssertClose(Tensor actual, Tensor oracle, Tensor magnitude, string what)
    {
        var excess = ((actual.to(float64) - oracle).abs() / (magnitude + 1e-30)).max().item<double>();
        Assert.True(excess <= 1e-5, $"{what}: an element is off by {excess:E2} of its products' magnitude sum");
    }
}
