using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MambaAD.Ssm;

/// <summary>
/// The handful of vector operations the scan kernels need, as static abstract members so that the kernels are written
/// once and the JIT specialises them per width (the TensorPrimitives operator pattern). Implementations:
/// <see cref="Simd512"/> (16 lanes), <see cref="Simd256"/> (8 lanes) and <see cref="SimdScalar"/> (1 lane, the
/// fallback on hardware without either).
/// </summary>
internal unsafe interface ISimd<TV> where TV : struct
{
    static abstract int Width { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    static abstract TV Splat(float x);
    /// <summary>*p in every lane, as one broadcast load (no shuffle on a vector port).</summary>
    static abstract TV SplatLoad(float* p);
    static abstract TV Add(TV a, TV b);
    static abstract TV Mul(TV a, TV b);
    /// <summary>a·b + c, fused where the hardware has it.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    /// <summary>2^x for −126 ≤ x ≤ 0 (below −126: 2^−126 at 8 lanes, 0 or the subnormal 2^x at 16, which the scan's
    /// flush-to-zero workers read as 0; <see cref="FastExp"/>): the scan's exp(δA) as exp2(δ·A·log2 e).</summary>
    static abstract TV Exp2NonPositive(TV x);
    /// <summary>softplus with β = 1 and the linear pass-through above 20 (torch's threshold, spec §7.3 step 3).</summary>
    static abstract TV Softplus(TV x);
    /// <summary>d softplus / dx: sigmoid(x), and 1 above the threshold 20.</summary>
    static abstract TV SoftplusGrad(TV x);
    /// <summary><see cref="Softplus"/> (the same bits) and, in <paramref name="grad"/>, softplus' from the same
    /// exponential (within a few ulp of <see cref="SoftplusGrad"/>): the scan's backward, which needs both.</summary>
    static abstract TV SoftplusWithGrad(TV x, out TV grad);
    static abstract float Sum(TV v);
    /// <summary>sums[n] = Sum(the vector at v + n·Width) for n &lt; 16, each with Sum's own additions (the same bits).</summary>
    static abstract void Sums16(float* v, float* sums);
}

internal readonly unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Width => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> SplatLoad(float* p) => Vector512.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp2NonPositive(Vector512<float> x) => FastExp.Exp2NonPositive(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Softplus(Vector512<float> x) => FastExp.Softplus(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SoftplusGrad(Vector512<float> x)
    {
        var sig = Vector512<float>.One / (Vector512<float>.One + FastExp.Exp(-x));
        return Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(20f)), Vector512<float>.One, sig);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SoftplusWithGrad(Vector512<float> x, out Vector512<float> grad) => FastExp.SoftplusWithGrad(x, out grad);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);

    /// <summary>
    /// Sum adds adjacent lanes, then adjacent pairs, then the 128-bit quarters as (q0 + q1) + (q2 + q3). The same
    /// additions for 16 vectors at once, as a transpose: each level adds the even and odd elements of two operands
    /// (vshufps 0x88 / 0xDD within quarters for the first two levels, vshuff32x4 across quarters for the last two), so
    /// 15 shuffle pairs and adds replace 16 horizontal sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sums16(float* v, float* sums)
    {
        if (!Avx512F.IsSupported)
        {
            for (int n = 0; n < 16; n++) sums[n] = Vector512.Sum(Load(v + 16 * n));
            return;
        }
        // Level 2 packs four vectors' quarter sums per quarter: r0 holds vectors 0–3, …, r3 vectors 12–15.
        var r0 = InQuarters(InQuarters(Load(v), Load(v + 16)), InQuarters(Load(v + 32), Load(v + 48)));
        var r1 = InQuarters(InQuarters(Load(v + 64), Load(v + 80)), InQuarters(Load(v + 96), Load(v + 112)));
        var r2 = InQuarters(InQuarters(Load(v + 128), Load(v + 144)), InQuarters(Load(v + 160), Load(v + 176)));
        var r3 = InQuarters(InQuarters(Load(v + 192), Load(v + 208)), InQuarters(Load(v + 224), Load(v + 240)));
        Store(sums, AcrossQuarters(AcrossQuarters(r0, r1), AcrossQuarters(r2, r3)));

        static Vector512<float> InQuarters(Vector512<float> a, Vector512<float> b) =>
            Avx512F.Shuffle(a, b, 0x88) + Avx512F.Shuffle(a, b, 0xDD);
        static Vector512<float> AcrossQuarters(Vector512<float> a, Vector512<float> b) =>
            Avx512F.Shuffle4x128(a, b, 0x88) + Avx512F.Shuffle4x128(a, b, 0xDD);
    }
}

internal readonly unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Width => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SplatLoad(float* p) => Avx.IsSupported ? Avx.BroadcastScalarToVector256(p) : Vector256.Create(*p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp2NonPositive(Vector256<float> x) => FastExp.Exp2NonPositive(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Softplus(Vector256<float> x) => FastExp.Softplus(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SoftplusGrad(Vector256<float> x)
    {
        var sig = Vector256<float>.One / (Vector256<float>.One + FastExp.Exp(-x));
        return Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(20f)), Vector256<float>.One, sig);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SoftplusWithGrad(Vector256<float> x, out Vector256<float> grad) => FastExp.SoftplusWithGrad(x, out grad);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);

    /// <summary>
    /// Sum adds adjacent lanes, then adjacent pairs, then the two 128-bit halves: the same additions for 16 vectors
    /// at once, as a transpose (vshufps 0x88 / 0xDD within halves, then vperm2f128 across them), as in Simd512.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Sums16(float* v, float* sums)
    {
        if (!Avx.IsSupported)
        {
            for (int n = 0; n < 16; n++) sums[n] = Vector256.Sum(Load(v + 8 * n));
            return;
        }
        var r0 = InHalves(InHalves(Load(v), Load(v + 8)), InHalves(Load(v + 16), Load(v + 24)));
        var r1 = InHalves(InHalves(Load(v + 32), Load(v + 40)), InHalves(Load(v + 48), Load(v + 56)));
        var r2 = InHalves(InHalves(Load(v + 64), Load(v + 72)), InHalves(Load(v + 80), Load(v + 88)));
        var r3 = InHalves(InHalves(Load(v + 96), Load(v + 104)), InHalves(Load(v + 112), Load(v + 120)));
        Store(sums, AcrossHalves(r0, r1));
        Store(sums + 8, AcrossHalves(r2, r3));

        static Vector256<float> InHalves(Vector256<float> a, Vector256<float> b) => Avx.Shuffle(a, b, 0x88) + Avx.Shuffle(a, b, 0xDD);
        static Vector256<float> AcrossHalves(Vector256<float> a, Vector256<float> b) =>
            Avx.Permute2x128(a, b, 0x20) + Avx.Permute2x128(a, b, 0x31);
    }
}

/// <summary>One lane with the library's scalar math: the fallback without AVX, and a check on the vector paths.</summary>
internal readonly unsafe struct SimdScalar : ISimd<float>
{
    public static int Width => 1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p) => *p;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, float v) => *p = v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Splat(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SplatLoad(float* p) => *p;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Mul(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Exp2NonPositive(float x) => MathF.Pow(2f, x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Softplus(float x) => x > 20f ? x : MathF.Max(x, 0f) + MathF.Log(1f + MathF.Exp(-MathF.Abs(x)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SoftplusGrad(float x) => x > 20f ? 1f : 1f / (1f + MathF.Exp(-x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SoftplusWithGrad(float x, out float grad)
    {
        grad = SoftplusGrad(x);
        return Softplus(x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(float v) => v;
    public static void Sums16(float* v, float* sums) => Buffer.MemoryCopy(v, sums, 64, 64);
}
