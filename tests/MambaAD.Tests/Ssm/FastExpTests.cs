using System.Runtime.Intrinsics;
using MambaAD.Ssm;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// The kernels' vector math against double-precision references, lane by lane over dense ranges, at both widths (the
/// 16-lane functions run emulated where AVX-512 is missing). Bounds are relative errors a little above what each
/// method gives in float32 (stated per function).
/// </summary>
public class FastExpTests
{
    private static IEnumerable<float> Range(float lo, float hi, int count)
    {
        for (int i = 0; i <= count; i++) yield return lo + (hi - lo) * i / count;
    }

    private static float[] Apply256(Func<Vector256<float>, Vector256<float>> f, float[] xs)
    {
        var res = new float[xs.Length];
        for (int i = 0; i < xs.Length; i += 8)
        {
            var v = Vector256.Create(Enumerable.Range(0, 8).Select(j => xs[Math.Min(i + j, xs.Length - 1)]).ToArray());
            var r = f(v);
            for (int j = 0; j < 8 && i + j < xs.Length; j++) res[i + j] = r[j];
        }
        return res;
    }

    private static float[] Apply512(Func<Vector512<float>, Vector512<float>> f, float[] xs)
    {
        var res = new float[xs.Length];
        for (int i = 0; i < xs.Length; i += 16)
        {
            var v = Vector512.Create(Enumerable.Range(0, 16).Select(j => xs[Math.Min(i + j, xs.Length - 1)]).ToArray());
            var r = f(v);
            for (int j = 0; j < 16 && i + j < xs.Length; j++) res[i + j] = r[j];
        }
        return res;
    }

    private static void AssertRelative(float[] xs, float[] actual, Func<double, double> reference, double bound, string what)
    {
        double worst = 0; float at = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            double e = reference(xs[i]);
            double rel = Math.Abs(actual[i] - e) / Math.Abs(e);
            if (!(rel <= worst)) { worst = rel; at = xs[i]; }
        }
        Assert.True(worst <= bound, $"{what}: worst relative error {worst:E3} at x = {at:R} (bound {bound:E1})");
    }

    public static IEnumerable<object[]> Widths() => [[8], [16]];

    /// <summary>2^x on [−126, 0] (degree-5 polynomials, ≤ 1.6e-7 evaluated in float32); below −126 2^−126 at 8 lanes
    /// (the exponent field is clamped there) and in [0, 2^−126] at 16 (vscalefps gives the subnormal 2^x or 0).</summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp2NonPositiveIsWithinItsPolynomialError(int width)
    {
        var xs = Range(-126f, 0f, 400_000).Concat(Range(-1f, 0f, 100_000)).ToArray();
        var ys = width == 8 ? Apply256(FastExp.Exp2NonPositive, xs) : Apply512(FastExp.Exp2NonPositive, xs);
        AssertRelative(xs, ys, x => Math.Pow(2, x), 2e-7, $"exp2 at {width} lanes");
        float[] below = [-126.5f, -140f, -1000f, float.MinValue];
        var tiny = width == 8 ? Apply256(FastExp.Exp2NonPositive, below) : Apply512(FastExp.Exp2NonPositive, below);
        float low = width == 8 ? 0.99f * MathF.Pow(2, -126) : 0f;
        foreach (var y in tiny) Assert.InRange(y, low, 1.01f * MathF.Pow(2, -126));
    }

    /// <summary>
    /// The 8-lane 2^x bit for bit: k = x rounded half to even (vroundps), f = x − k, the degree-5 polynomial by FMAs and
    /// 2^k from k + RoundShift's low bits, written out in scalar float32. Over the ties k + ½ (where an earlier version
    /// took k from x + RoundShift and so rounded to odd k, with its f and exponent still agreeing: a change of f there
    /// must change both), a dense range and the clamp.
    /// </summary>
    [Fact]
    public void Exp2NonPositiveAt8LanesHasTheBitsOfItsScalarFormula()
    {
        static float Formula(float x)
        {
            x = MathF.Max(x, -126f);
            float k = MathF.Round(x);   // MidpointRounding.ToEven
            float f = x - k;
            float p = MathF.FusedMultiplyAdd(FastExp.Q5, f, FastExp.Q4);
            p = MathF.FusedMultiplyAdd(p, f, FastExp.Q3);
            p = MathF.FusedMultiplyAdd(p, f, FastExp.Q2);
            p = MathF.FusedMultiplyAdd(p, f, FastExp.Q1);
            p = MathF.FusedMultiplyAdd(p, f, FastExp.Q0);
            return p * BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(k + FastExp.RoundShift) << 23);
        }
        var xs = Enumerable.Range(-127, 127).Select(k => k + 0.5f)
            .Concat(Range(-126f, 0f, 300_000)).Concat(Range(-0.6f, 0f, 50_000)).Concat([-126f, -130f, 0f, -0f]).ToArray();
        var ys = Apply256(FastExp.Exp2NonPositive, xs);
        for (int i = 0; i < xs.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(ys[i]) == BitConverter.SingleToInt32Bits(Formula(xs[i])),
                $"2^{xs[i]:R}: {ys[i]:R} at 8 lanes, {Formula(xs[i]):R} by the scalar formula");
    }

    /// <summary>
    /// softplus(x) = log(1 + e^x), linear above 20 (spec §7.3): 1e-6 relative for x ≥ −10; below, e^x comes from
    /// 2^(x·log2 e) and the float32 product's rounding, |x|·log2 e·2^−24 in the exponent, dominates (≤ 2e-6 at −30).
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void SoftplusMatchesLog1pExp(int width)
    {
        foreach (var (lo, hi, bound) in new[] { (-10f, 30f, 1e-6), (-30f, -10f, 2e-6) })
        {
            var xs = Range(lo, hi, 200_000).ToArray();
            var ys = width == 8 ? Apply256(FastExp.Softplus, xs) : Apply512(FastExp.Softplus, xs);
            AssertRelative(xs, ys, Log1pExp, bound, $"softplus at {width} lanes on [{lo}, {hi}]");
        }

        // log(1 + e^x) in double loses the digits of e^x below 1e-16·1 for very negative x: its series there.
        static double Log1pExp(double x) => x > 20 ? x : x < -20 ? Math.Exp(x) - Math.Exp(2 * x) / 2 : Math.Log(1 + Math.Exp(x));
    }

    /// <summary>softplus'(x) = sigmoid(x), 1 above 20: 1e-6 relative down to −87 (1/(1 + e^−x), e^−x range-reduced
    /// exactly, so no loss for very negative x); below, where float32's sigmoid is subnormal or 0, at most 1.3e-38
    /// (e^−x is clamped at e^88.3: 1/(1 + e^87.5) ≈ 1.0e-38).</summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void SoftplusGradMatchesSigmoid(int width)
    {
        var xs = Range(-87f, 30f, 400_000).ToArray();
        var ys = width == 8 ? Apply256(Simd256.SoftplusGrad, xs) : Apply512(Simd512.SoftplusGrad, xs);
        AssertRelative(xs, ys, x => x > 20 ? 1 : 1 / (1 + Math.Exp(-x)), 1e-6, $"softplus' at {width} lanes");
        float[] below = [-87.5f, -100f, -1000f, float.MinValue];
        var tiny = width == 8 ? Apply256(Simd256.SoftplusGrad, below) : Apply512(Simd512.SoftplusGrad, below);
        foreach (var y in tiny) Assert.InRange(y, 0f, 1.3e-38f);
    }

    /// <summary>
    /// softplus'(x) = sigmoid(x), 1 above 20, from the softplus' own e^−|x|: 1e-6 relative for x ≥ −10, and below the
    /// bound of softplus there (sigmoid ≈ e^x, whose exponent carries the float32 product's rounding). The softplus
    /// returned beside it has exactly the bits of Softplus (the forward's δ).
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void SoftplusWithGradMatchesSigmoid(int width)
    {
        foreach (var (lo, hi, bound) in new[] { (-10f, 30f, 1e-6), (-30f, -10f, 3e-6) })
        {
            var xs = Range(lo, hi, 200_000).ToArray();
            var grads = width == 8 ? Apply256(x => { Simd256.SoftplusWithGrad(x, out var g); return g; }, xs)
                : Apply512(x => { Simd512.SoftplusWithGrad(x, out var g); return g; }, xs);
            AssertRelative(xs, grads, x => x > 20 ? 1 : 1 / (1 + Math.Exp(-x)), bound, $"softplus' at {width} lanes on [{lo}, {hi}]");
            var values = width == 8 ? Apply256(x => Simd256.SoftplusWithGrad(x, out _), xs) : Apply512(x => Simd512.SoftplusWithGrad(x, out _), xs);
            var plain = width == 8 ? Apply256(FastExp.Softplus, xs) : Apply512(FastExp.Softplus, xs);
            Assert.Equal(plain, values);
        }
    }
}
