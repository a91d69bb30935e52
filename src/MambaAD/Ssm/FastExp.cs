using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MambaAD.Ssm;

/// <summary>
/// The scan's transcendental functions in float32 vectors, inline and branch-free: <c>Exp2NonPositive</c>
/// (exp(δA) as 2^(δ·A·log2 e), the inner loop's one exp per state and step), <c>Softplus</c> (δ from Δ, spec
/// §7.3 step 3; <c>SoftplusWithGrad</c> adds softplus' = sigmoid for the backward from the same exponential) and
/// <c>Exp</c> (e^x: sigmoid, for softplus' and SiLU). Each is within a few float32 ulp of the library functions on
/// the range the scan uses; the scan tests compare the kernels against a float64 oracle.
/// </summary>
internal static class FastExp
{
    // 2^f for f ∈ [0, 1): the degree-5 minimax polynomial for relative error (Remez; 7.5e-8 in exact arithmetic).
    internal const float P0 = 0.99999992506f, P1 = 0.69315307320f, P2 = 0.24015361705f, P3 = 0.05582631805f,
        P4 = 0.00898934009f, P5 = 0.00187757667f;

    /// <summary>
    /// 2^x for x ≤ 0 in seven vector operations: f = x − ⌊x⌋ by vreduceps, 2^f by the degree-5 minimax polynomial, and
    /// vscalefps multiplies by 2^⌊x⌋ itself (it floors its second operand). No clamp: below −126 vscalefps returns the
    /// subnormal 2^x or 0, and the scan's workers flush subnormals to zero anyway (<see cref="FlushToZero"/>), so a
    /// clamp at −126 changed no state's bits, only the recurrence's time (docs/performance.md, phase 18). Cheaper than
    /// round-to-nearest by vrndscaleps (two µops on port 0) with a Taylor polynomial.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2NonPositive(Vector512<float> x)
    {
        // Without AVX-512 (the 16-lane kernel forced on other hardware, e.g. by the tests) Vector512 is emulated and
        // the intrinsics below do not exist: floor and an exponent-field scale instead (JIT-time branch, no cost),
        // which needs ⌊x⌋ ≥ −126 for a normal exponent.
        if (!Avx512F.IsSupported) x = Vector512.Max(x, Vector512.Create(-126f));
        var f = Avx512DQ.IsSupported ? Avx512DQ.Reduce(x, 0x09) : x - Vector512.Floor(x);   // imm: 0 fraction bits, round down, quiet
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(P5), f, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(P0));
        if (Avx512F.IsSupported) return Avx512F.Scale(p, x);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(x - f) + Vector512.Create(127), 23).AsSingle();
        return p * scale;
    }

    // 2^f for f ∈ [−0.5, 0.5]: degree 5 with Q0 = 1 and Q1 = ln 2 (float32) fixed and Q2…Q5 minimax for relative
    // error (Remez): 1.0e-7 in exact arithmetic, 1.6e-7 evaluated in float32 (the degree-6 Taylor polynomial it
    // replaced: 2.2e-7). Exact at 0 and within 4e-8 for |f| ≤ 0.05, where most δ·A land: a free Q0 (minimax without
    // constraints, 7.5e-8) rounds to 1 + 1.2e-7 in float32, a bias that products of many a_t accumulate.
    internal const float Q0 = 1f, Q1 = 0.693147182f, Q2 = 0.240222812f, Q3 = 0.0555055998f,
        Q4 = 0.00966970809f, Q5 = 0.00133002643f;

    /// <summary>1.5·2^23 + 127: k + RoundShift, for an integer k ∈ [−126, 0], is exact and holds k + 127 in its low
    /// mantissa bits.</summary>
    internal const float RoundShift = 12583039f;

    /// <summary>
    /// 2^x for x ∈ [−126, 0] without AVX-512 in eleven vector operations, none of them a conversion: k = x rounded to
    /// the nearest integer (ties to even; vroundps), f = x − k ∈ [−0.5, 0.5] exactly, 2^f by a degree-5 minimax
    /// polynomial, and 2^k from t = k + 1.5·2^23 + 127, whose low bits are the biased exponent k + 127: t's bits shifted
    /// left by 23. t is off the polynomial's path, so f is ready two operations after the clamp (k taken from t instead,
    /// x + RoundShift − RoundShift, puts a third on it: docs/performance.md, phase 15). (Vector256.ConvertToInt32
    /// saturates: four more operations per call.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp2NonPositive(Vector256<float> x)
    {
        x = Vector256.Max(x, Vector256.Create(-126f));
        var k = Vector256.Round(x);
        var f = x - k;
        var t = k + Vector256.Create(RoundShift);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(Q5), f, Vector256.Create(Q4));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(Q3));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(Q2));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(Q1));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(Q0));
        return p * Vector256.ShiftLeft(t.AsInt32(), 23).AsSingle();
    }

    // log(1 + v) = 2·atanh(s), s = v / (2 + v): the odd series 2s(1 + s²/3 + … + s¹²/13), truncation ≤ 1.4e-8 relative for
    // v ∈ (0, 1] (s ≤ 1/3). No range reduction: softplus only needs log(1 + e^−|x|).
    internal const float L3 = 1f / 3, L5 = 1f / 5, L7 = 1f / 7, L9 = 1f / 9, L11 = 1f / 11, L13 = 1f / 13;

    /// <summary>
    /// softplus(x) = max(x, 0) + log(1 + e^−|x|), x above 20 passed through (torch's threshold): one exp2, one
    /// reciprocal and nine FMAs, all inline (System.Numerics' vector Log is an out-of-line call and was 40 % of Δ's preparation).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Softplus(Vector512<float> x) => Softplus(x, out _);

    /// <summary>
    /// <see cref="Softplus(Vector512{float})"/> (the same bits) and its derivative sigmoid(x), 1 above 20, from the same
    /// v = e^−|x|: sigmoid(x) = 1/(1 + v) for x ≥ 0 and v/(1 + v) below, the reciprocal by vrcp14ps and one Newton
    /// step. The backward's δ and softplus' per step thus cost one exponential, not two and a divide.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SoftplusWithGrad(Vector512<float> x, out Vector512<float> grad)
    {
        var sp = Softplus(x, out var v);
        var den = v + Vector512<float>.One;
        var rcp = Avx512F.IsSupported ? Reciprocal(den) : Vector512<float>.One / den;
        var sig = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), rcp, v * rcp);
        grad = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(20f)), Vector512<float>.One, sig);
        return sp;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Softplus(Vector512<float> x, out Vector512<float> v)
    {
        v = Exp2NonPositive(Vector512.Abs(x) * Vector512.Create(-Log2E));
        var den = v + Vector512.Create(2f);
        var s = Avx512F.IsSupported ? v * Reciprocal(den) : v / den;
        var s2 = s * s;
        var q = Vector512.FusedMultiplyAdd(Vector512.Create(L13), s2, Vector512.Create(L11));
        q = Vector512.FusedMultiplyAdd(q, s2, Vector512.Create(L9));
        q = Vector512.FusedMultiplyAdd(q, s2, Vector512.Create(L7));
        q = Vector512.FusedMultiplyAdd(q, s2, Vector512.Create(L5));
        q = Vector512.FusedMultiplyAdd(q, s2, Vector512.Create(L3));
        q = Vector512.FusedMultiplyAdd(q, s2, Vector512<float>.One);
        // vmaxps itself: Vector512.Max follows IEEE 754-2019 (NaN, ±0) and costs a vfixupimmps more.
        var pos = Avx512F.IsSupported ? Avx512F.Max(x, Vector512<float>.Zero) : Vector512.Max(x, Vector512<float>.Zero);
        var sp = Vector512.FusedMultiplyAdd(s + s, q, pos);
        return Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(20f)), x, sp);
    }

    /// <summary>1/d by vrcp14ps and one Newton step (≈ 2^−28; AVX-512F only): a zmm divide alone cost as much as the
    /// rest of the softplus together.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Reciprocal(Vector512<float> d)
    {
        var r = Avx512F.Reciprocal14(d);
        return r * Vector512.FusedMultiplyAdd(-d, r, Vector512.Create(2f));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Softplus(Vector256<float> x) => Softplus(x, out _);

    /// <summary>The 8-lane <see cref="SoftplusWithGrad(Vector512{float}, out Vector512{float})"/>, with a divide (no
    /// 14-bit reciprocal below AVX-512; the 8-lane softplus divides too).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SoftplusWithGrad(Vector256<float> x, out Vector256<float> grad)
    {
        var sp = Softplus(x, out var v);
        var num = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.One, v);
        var sig = num / (v + Vector256<float>.One);
        grad = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(20f)), Vector256<float>.One, sig);
        return sp;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Softplus(Vector256<float> x, out Vector256<float> v)
    {
        v = Exp2NonPositive(Vector256.Abs(x) * Vector256.Create(-Log2E));
        var s = v / (v + Vector256.Create(2f));
        var s2 = s * s;
        var q = Vector256.FusedMultiplyAdd(Vector256.Create(L13), s2, Vector256.Create(L11));
        q = Vector256.FusedMultiplyAdd(q, s2, Vector256.Create(L9));
        q = Vector256.FusedMultiplyAdd(q, s2, Vector256.Create(L7));
        q = Vector256.FusedMultiplyAdd(q, s2, Vector256.Create(L5));
        q = Vector256.FusedMultiplyAdd(q, s2, Vector256.Create(L3));
        q = Vector256.FusedMultiplyAdd(q, s2, Vector256<float>.One);
        // vmaxps itself: Vector256.Max follows IEEE 754-2019 (NaN, ±0) and costs four more operations.
        var pos = Avx.IsSupported ? Avx.Max(x, Vector256<float>.Zero) : Vector256.Max(x, Vector256<float>.Zero);
        var sp = Vector256.FusedMultiplyAdd(s + s, q, pos);
        return Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(20f)), x, sp);
    }

    internal const float Log2E = 1.44269504088896341f;
    internal const float Ln2Hi = 0.693359375f;      // exact in 9 bits: k·Ln2Hi is exact for |k| ≤ 2^14
    internal const float Ln2Lo = -2.12194440e-4f;
    internal const float Magic = 12582912f;         // 1.5·2^23: adding it rounds to an integer, kept in the low bits
    internal const float MinX = -87.3f, MaxX = 88.3f;
    internal const float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(MinX)), Vector512.Create(MaxX));
        var t = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(Magic));
        var k = t - Vector512.Create(Magic);
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C6), r, Vector512.Create(C5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        // t's bits are Magic's plus k: shifting them by 23 puts k + (Magic's own 0x4B400000 << 23 = 0) into the
        // exponent; adding 127 << 23 makes the biased exponent.
        var scale = Vector512.ShiftLeft(t.AsInt32(), 23) + Vector512.Create(127 << 23);
        return p * scale.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(MinX)), Vector256.Create(MaxX));
        var t = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(Magic));
        var k = t - Vector256.Create(Magic);
        var r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(C6), r, Vector256.Create(C5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f));
        var scale = Vector256.ShiftLeft(t.AsInt32(), 23) + Vector256.Create(127 << 23);
        return p * scale.AsSingle();
    }
}
