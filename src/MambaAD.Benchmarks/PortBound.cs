using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MambaAD.Ssm;

namespace MambaAD.Benchmarks;

/// <summary>
/// The scan's port bound on this machine, measured in the same run as the kernel: the rate of independent vector FMAs
/// the workers sustain (two FMA ports per core on the CPUs we target), and the vector ALU operations the forward
/// kernel issues per (batch, direction, channel, step), counted from the JIT's code (<c>DOTNET_JitDisasm</c>).
/// Bound = operations per step ÷ rate: what the kernel would take if every cycle of both FMA ports did one of its
/// operations. Measured alternately with the kernel, so the machine's load cancels in the ratio.
/// </summary>
internal static unsafe class PortBound
{
    /// <summary>
    /// Vector ALU operations of the projected forward per vector step (W channels, one step, one direction), N = 16,
    /// Δ rank R. Per state: δ·A, the exp2 (16 lanes: vreduceps, 5 FMAs, vscalefps; 8 lanes: clamp, vroundps, subtraction,
    /// addition, 5 FMAs, shift, multiply), δu·B, the h FMA and the y FMA: 11 at 16 lanes, 15 at 8. Per step: δ·u, D·u and
    /// two y additions (4), and ProjectDelta's R FMAs and softplus (26 at 16 lanes, 24 at 8 with one divide).
    /// </summary>
    public static int ForwardOpsPerVectorStep(int width, int r) => width switch
    {
        16 => 16 * 11 + 4 + r + 26,
        8 => 16 * 15 + 4 + r + 24,
        _ => throw new ArgumentException("the bound is counted for 16 and 8 lanes"),
    };

    /// <summary>The port bound in ns per (batch, direction, channel, step) at Δ rank R for a probed FMA rate.</summary>
    public static double NsPerStep(int width, int r, double fmaPerNs) => ForwardOpsPerVectorStep(width, r) / (double)width / fmaPerNs;

    /// <summary>
    /// The kernel and the FMA probe run alternately, a warm-up round and then <paramref name="repeats"/> rounds, the best
    /// of each kept (load only ever adds time), so that the kernel ÷ bound compares the two under the same conditions.
    /// Returns the kernel's best ms and the best rate (NaN below 8 lanes, where no bound is counted).
    /// </summary>
    public static (double KernelMs, double FmaPerNs) AlternatedWithKernel(int width, int repeats, Action kernel)
    {
        double best = double.MaxValue, rate = width >= 8 ? 0 : double.NaN;
        for (int i = 0; i <= repeats; i++)
        {
            double probe = width >= 8 ? FmaPerNs(width) : double.NaN;
            var sw = Stopwatch.StartNew();
            kernel();
            if (i == 0) continue;
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            rate = Math.Max(rate, probe);
        }
        return (best, rate);
    }

    /// <summary>Vector FMAs per ns over <see cref="ScanWorkers.Threads"/> workers, each running 12 independent FMA chains.</summary>
    public static double FmaPerNs(int width, long itersPerWorker = 20_000_000)
    {
        int workers = ScanWorkers.Threads;
        var sw = Stopwatch.StartNew();
        ScanWorkers.Run(workers, 1, (_, _) =>
        {
            float r = width == 16 ? Chains<Simd512, Vector512<float>>(itersPerWorker) : Chains<Simd256, Vector256<float>>(itersPerWorker);
            if (r == 42f) Console.Write("");   // keep the result alive
        });
        return 12.0 * itersPerWorker * workers / (sw.Elapsed.TotalMilliseconds * 1e6);
    }

    /// <summary>12 independent FMA chains, <paramref name="iters"/> FMAs each: enough in flight for two FMA ports of
    /// four-cycle latency.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains<TS, TV>(long iters) where TS : ISimd<TV> where TV : struct
    {
        TV m = TS.Splat(0.9999999f), c = TS.Splat(1e-7f);
        TV a0 = TS.Splat(1f), a1 = TS.Add(a0, c), a2 = TS.Add(a1, c), a3 = TS.Add(a2, c), a4 = TS.Add(a3, c), a5 = TS.Add(a4, c);
        TV a6 = TS.Add(a5, c), a7 = TS.Add(a6, c), a8 = TS.Add(a7, c), a9 = TS.Add(a8, c), a10 = TS.Add(a9, c), a11 = TS.Add(a10, c);
        for (long i = 0; i < iters; i++)
        {
            a0 = TS.Fma(a0, m, c); a1 = TS.Fma(a1, m, c); a2 = TS.Fma(a2, m, c); a3 = TS.Fma(a3, m, c);
            a4 = TS.Fma(a4, m, c); a5 = TS.Fma(a5, m, c); a6 = TS.Fma(a6, m, c); a7 = TS.Fma(a7, m, c);
            a8 = TS.Fma(a8, m, c); a9 = TS.Fma(a9, m, c); a10 = TS.Fma(a10, m, c); a11 = TS.Fma(a11, m, c);
        }
        return TS.Sum(TS.Add(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)), TS.Add(TS.Add(TS.Add(a4, a5), TS.Add(a6, a7)),
            TS.Add(TS.Add(a8, a9), TS.Add(a10, a11)))));
    }
}
