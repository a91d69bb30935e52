using BenchmarkDotNet.Attributes;
using MambaAD.Benchmarks;
using MambaAD.Ssm;
using static TorchSharp.torch;

namespace MambaAD.Bench;

/// <summary>
/// BenchmarkDotNet view of the op SS2D calls, kernel against reference in one class (style anchors §11): batch 2,
/// K = 8, d_inner 64, N = 16, R = 4, one even and one odd length. Run: <c>dotnet run -c Release --project
/// bench/MambaAD.Bench -- --filter *ScanBenchmarks*</c>. The stage-shaped ns/step figures come from the stopwatch
/// harness (<c>-- scan</c>).
/// </summary>
[MemoryDiagnoser(false)]
public class ScanBenchmarks
{
    [Params(256, 263)] public int L;
    [Params("kernel", "reference")] public string Impl = "kernel";

    private Tensor[] _x = [];
    private Tensor _paths = null!;
    private ISelectiveScan _scan = null!;

    [GlobalSetup]
    public void Setup()
    {
        _x = ScanSampleInputs.CreateProjected(2, 8, 64, 16, L, 4);
        var gen = new Generator(1);
        _paths = stack(Enumerable.Range(0, 8).Select(_ => randperm(L, generator: gen)).ToArray());
        _scan = Impl == "kernel" ? SelectiveScanCpu.Instance : SelectiveScanReference.Instance;
    }

    [Benchmark]
    public void ScanAndMergeProjected()
    {
        using var _ = no_grad();
        _scan.ScanAndMergeProjected(_x[0], _x[1], _x[2], _x[3], _x[4], _x[5], _paths).Dispose();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in _x) t.Dispose();
        _paths.Dispose();
    }
}
