using System.Diagnostics;
using MambaAD.Benchmarks;
using MambaAD.Ssm;
using TorchSharp;
using static TorchSharp.torch;
using static MambaAD.Bench.BenchArgs;

namespace MambaAD.Bench;

/// <summary>
/// Stopwatch harness for the selective-scan kernel: <c>dotnet run -c Release --project bench/MambaAD.Bench -- scan
/// [--batch 8,16] [--stage 3|2] [--width 16|8|1] [--reps 5] [--threads N] [--keep-heap] [--paths hilbert|sweep|…|random]
/// [--what proj,bwd,bound,hash,overstates,reference | mem]</c>.
/// Reports ns per (batch, direction, channel, time) step, the median of the repetitions after one warm-up.
/// Stage 3 is the 64×64 stage (d_inner 128, L 4096), stage 2 the 32×32 one (d_inner 256, L 1024), 1 and 0 the 16×16 and
/// 8×8 ones; K = 8, N = 16, R = d_inner/32. <c>proj</c> is the op SS2D calls (ScanAndMergeProjected) without a
/// gradient, <c>bwd</c> its forward saving chunk states and its backward, <c>bound</c> the forward against its port
/// bound (<see cref="PortBound"/>), <c>hash</c> SHA-256 prefixes of y and the gradients; <c>overstates</c> the plain-scan variant
/// with SIMD over the states (AVX-512 only), <c>reference</c> the torch-ops reference.
/// </summary>
internal static class ScanBench
{
    public static int Run(string[] args)
    {
        var batches = Opt(args, "--batch", "8,16").Split(',').Select(int.Parse).ToArray();
        var stages = Opt(args, "--stage", "3,2").Split(',').Select(int.Parse).ToArray();
        int width = int.Parse(Opt(args, "--width", ScanKernels.HardwareWidth.ToString()));
        int reps = int.Parse(Opt(args, "--reps", "5"));
        var what = Opt(args, "--what", "proj,bwd").Split(',').ToHashSet();
        var pathKind = Opt(args, "--paths", "hilbert");
        if (Opt(args, "--threads", "") is { Length: > 0 } th) torch.set_num_threads(int.Parse(th));
        if (args.Contains("--keep-heap"))
        {
            // glibc returns large blocks (≥ 32 MB after its dynamic threshold) to the OS on free, so every big tensor
            // is page-faulted and zeroed again; serving them all from the heap (no mmap) removes that for a benchmark
            // that wants the kernel alone (process-wide policy: the application's choice, not the library's; for a
            // whole training step it cost 10.9 GB of RSS against 7 GB).
            Mallopt(-4 /* M_MMAP_MAX */, 0);
            Mallopt(-1 /* M_TRIM_THRESHOLD */, int.MaxValue);
            Console.WriteLine("glibc heap: no mmap, no trim");
        }
        var kernel = new SelectiveScanCpu(width);
        Console.WriteLine($"selective scan, width {width}, {pathKind} paths, {ScanWorkers.Threads} threads (torch {torch.get_num_threads()}, " +
                          $"{Environment.ProcessorCount} cores), median of {reps} after 1 warm-up");
        Console.WriteLine($"{"case",-34} {"Bt",3} {"d",4} {"L",5} {"ms",9} {"ns/step",8} {"cpu-ns/st",9}");
        foreach (int stage in stages)
        foreach (int bt in batches)
        {
            int d = stage == 3 ? 128 : stage == 2 ? 256 : stage == 1 ? 512 : 1024;
            int l = stage == 3 ? 4096 : stage == 2 ? 1024 : stage == 1 ? 256 : 64;
            const int k = 8, n = 16;
            double steps = (double)bt * k * d * l;
            using var scope = NewDisposeScope();
            var xp = ScanSampleInputs.CreateProjected(bt, k, d, n, l, Math.Max(1, d / 32));
            var paths = PathsFor(pathKind, l, k);
            if (what.Contains("mem"))
            {
                // Memory of one forward + backward alone (run it in its own process): the inputs, then the high-water
                // mark. Chunk states are Bt·K·d·N·⌈L/32⌉ floats (ScanKernels.Chunk).
                var xs = xp.Select(t => t.requires_grad_(true)).ToArray();
                double before = RssMb();
                double inputsMb = xs.Sum(t => t.numel() * 4.0) / (1 << 20);
                using (var inner = NewDisposeScope())
                {
                    var y = kernel.ScanAndMergeProjected(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], paths);
                    double afterFwd = RssMb();
                    y.backward([ones_like(y)]);
                    int chunks = (l + ScanKernels.Chunk - 1) / ScanKernels.Chunk;
                    Console.WriteLine($"memory Bt {bt} d {d} L {l}: inputs {inputsMb:F0} MB; RSS before {before:F0} MB, after forward " +
                                      $"{afterFwd:F0} MB, peak (VmHWM) after backward {PeakRssMb():F0} MB; chunk states " +
                                      $"{(double)bt * k * d * n * chunks * 4 / (1 << 20):F0} MB; a full state history would be " +
                                      $"{(double)bt * k * d * n * l * 4 / (1 << 20):F0} MB");
                }
                continue;
            }
            void Report(string name, double ms) =>
                Console.WriteLine($"{name,-34} {bt,3} {d,4} {l,5} {ms,9:F1} {ms * 1e6 / steps,8:F2} {LastCpuMs * 1e6 / steps,9:F2}");

            if (what.Contains("proj"))
                Report("ScanAndMergeProjected fwd", Time(reps, () =>
                {
                    using var _ = no_grad();
                    kernel.ScanAndMergeProjected(xp[0], xp[1], xp[2], xp[3], xp[4], xp[5], paths).Dispose();
                }));
            if (what.Contains("bound"))
            {
                // Kernel and FMA probe alternately: kernel ÷ port bound.
                int r = Math.Max(1, d / 32);
                var (best, bestRate) = PortBound.AlternatedWithKernel(width, reps, () =>
                {
                    using (no_grad()) kernel.ScanAndMergeProjected(xp[0], xp[1], xp[2], xp[3], xp[4], xp[5], paths).Dispose();
                });
                double ops = PortBound.ForwardOpsPerVectorStep(width, r) / (double)width;
                double boundNs = PortBound.NsPerStep(width, r, bestRate), kernelNs = best * 1e6 / steps;
                Console.WriteLine($"bound: {ops:F1} vector ops per step, {bestRate:F2} FMA/ns ({ScanWorkers.Threads} workers) → " +
                                  $"port bound {boundNs:F2} ns/step; kernel {kernelNs:F2} ns/step = {kernelNs / boundNs:F2} × bound (best of {reps})");
            }
            if (what.Contains("overstates"))
            {
                if (!OverStatesScan.Supported) Console.WriteLine("overstates: skipped, needs AVX-512");
                else
                {
                    var x = ScanSampleInputs.Create(bt, k, d, n, l, merge: false);
                    Report("Scan fwd, SIMD over N (variant)", Time(reps, () =>
                    {
                        using var _ = no_grad();
                        OverStatesScan.Forward(x[0], x[1], x[2], x[3], x[4], x[5], x[6]).Dispose();
                    }));
                }
            }
            if (what.Contains("reference"))
                Report("ScanAndMergeProjected, reference", Time(Math.Min(reps, 1), () =>
                {
                    using var _ = no_grad();
                    SelectiveScanReference.Instance.ScanAndMergeProjected(xp[0], xp[1], xp[2], xp[3], xp[4], xp[5], paths).Dispose();
                }));
            if (what.Contains("hash"))
            {
                // SHA-256 of y and of every input gradient (g drawn from a fixed seed): a kernel change that claims the
                // same bits is checked by running this before and after it.
                var leaves = xp.Select(t => t.detach().requires_grad_(true)).ToArray();
                var y = kernel.ScanAndMergeProjected(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], paths);
                y.backward([randn(y.shape, generator: new Generator(7))]);
                string Sha(Tensor t) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
                    t.detach().contiguous().data<float>().ToArray().SelectMany(BitConverter.GetBytes).ToArray()))[..16];
                Console.WriteLine($"hash Bt {bt} d {d} L {l}: y {Sha(y)}; grads " +
                                  string.Join(" ", leaves.Select(t => t.grad is null ? "-" : Sha(t.grad))));
            }
            if (what.Contains("bwd"))
            {
                var leaves = xp.Select(t => t.detach().requires_grad_(true)).ToArray();
                var fw = new List<double>(); var bw = new List<double>(); var fc = new List<double>(); var bc = new List<double>();
                var proc = Process.GetCurrentProcess();
                for (int r = 0; r <= reps; r++)
                {
                    using var inner = NewDisposeScope();
                    proc.Refresh(); var c0 = proc.TotalProcessorTime;
                    var sw = Stopwatch.StartNew();
                    var y = kernel.ScanAndMergeProjected(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], paths);
                    double f = sw.Elapsed.TotalMilliseconds;
                    proc.Refresh(); var c1 = proc.TotalProcessorTime;
                    var g = ones_like(y);
                    sw.Restart();
                    y.backward([g]);
                    double b = sw.Elapsed.TotalMilliseconds;
                    proc.Refresh(); var c2 = proc.TotalProcessorTime;
                    if (r > 0) { fc.Add((c1 - c0).TotalMilliseconds); bc.Add((c2 - c1).TotalMilliseconds); }
                    foreach (var t in leaves) { t.grad?.Dispose(); t.grad = null; }
                    if (r > 0) { fw.Add(f); bw.Add(b); }
                }
                double fwdMs = Median(fw), bwdMs = Median(bw), fCpu = Median(fc), bCpu = Median(bc);
                LastCpuMs = fCpu;
                Report("Projected fwd (saving states)", fwdMs);
                LastCpuMs = bCpu;
                Report("Projected bwd", bwdMs);
                LastCpuMs = fCpu + bCpu;
                Report("Projected fwd+bwd", fwdMs + bwdMs);
                Console.WriteLine($"{"",-34} peak RSS so far {PeakRssMb():F0} MB");
            }
        }
        return 0;
    }

    /// <summary>Median wall time; also records the process CPU time per repetition (the machine is shared: CPU time
    /// divided by the thread count shows what an unloaded machine would give).</summary>
    private static double Time(int reps, Action body)
    {
        body();
        var ts = new List<double>(); var cpu = new List<double>();
        var proc = Process.GetCurrentProcess();
        for (int i = 0; i < reps; i++)
        {
            proc.Refresh();
            var c0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            body();
            ts.Add(sw.Elapsed.TotalMilliseconds);
            proc.Refresh();
            cpu.Add((proc.TotalProcessorTime - c0).TotalMilliseconds);
        }
        LastCpuMs = Median(cpu);
        return Median(ts);
    }

    internal static double LastCpuMs;

    private static double Median(List<double> xs) { xs.Sort(); return xs[xs.Count / 2]; }

    internal static double RssMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:")) return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        return double.NaN;
    }

    internal static double PeakRssMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:")) return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        return double.NaN;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int param, int value);

    /// <summary>The K scan orders: the model's own (a Hilbert curve and its flips and transposes, or another
    /// <see cref="ScanType"/>), or random permutations of the L pixels (every u and y access a cache miss at the
    /// largest stage: the kernel's worst case).</summary>
    private static Tensor PathsFor(string kind, int l, int k)
    {
        if (kind == "random")
        {
            var gen = new Generator(1);
            return stack(Enumerable.Range(0, k).Select(_ => randperm(l, generator: gen)).ToArray());
        }
        return PathTensors.Get(ScanOrder.Parse(kind), (int)Math.Sqrt(l), k);
    }
}
