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

    /// <summary>Vector FMAs per ns over <see cref="ScanWorkers.Threads"/> workers, each running 12 independent FMA chains.</summary>
    public static double FmaPerNs(int width, long itersPerWorker = 20_000_000)
    {
        int workers = ScanWorkers.Threads;
        var sw = Stopwatch.StartNew();
        ScanWorkers.Run(workers, 1, (_, _) =>
        {
            float r = width == 16 ? Chains512(itersPerWorker) : Chains256(itersPerWorker);
            if (r == 42f) Console.Write("");   // keep the result alive
        });
        return 12.0 * itersPerWorker * workers / (sw.Elapsed.TotalMilliseconds * 1e6);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(long iters)
    {
        var m = Vector512.Create(0.9999999f); var c = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
        Vector512<float> a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c); a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(long iters)
    {
        var m = Vector256.Create(0.9999999f); var c = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
        Vector256<float> a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, c); a1 = Vector256.FusedMultiplyAdd(a1, m, c);
            a2 = Vector256.FusedMultiplyAdd(a2, m, c); a3 = Vector256.FusedMultiplyAdd(a3, m, c);
            a4 = Vector256.FusedMultiplyAdd(a4, m, c); a5 = Vector256.FusedMultiplyAdd(a5, m, c);
            a6 = Vector256.FusedMultiplyAdd(a6, m, c); a7 = Vector256.FusedMultiplyAdd(a7, m, c);
            a8 = Vector256.FusedMultiplyAdd(a8, m, c); a9 = Vector256.FusedMultiplyAdd(a9, m, c);
            a10 = Vector256.FusedMultiplyAdd(a10, m, c); a11 = Vector256.FusedMultiplyAdd(a11, m, c);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
