using System.Runtime.Intrinsics;
using MambaAD.Ssm;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// Sums16, the transpose that sums the scan backward's 16 dB (and dC) vectors at once, gives exactly the bits of 16
/// separate Sums: the backward's d rows did not change when it replaced them, and must not change on a runtime whose
/// Sum adds in another order without this test saying so. Random values over 16 binades, so a different order of
/// additions rounds differently in most draws.
/// </summary>
public unsafe class ScanSimdTests
{
    [Fact]
    public void Sums16_equals_sixteen_Sums_bit_for_bit_at_16_lanes()
    {
        if (!Vector512.IsHardwareAccelerated) return;   // the fallback is Sum itself
        Check<Simd512, Vector512<float>>(seed: 1);
    }

    [Fact]
    public void Sums16_equals_sixteen_Sums_bit_for_bit_at_8_lanes()
    {
        if (!Vector256.IsHardwareAccelerated) return;
        Check<Simd256, Vector256<float>>(seed: 2);
    }

    [Fact]
    public void Sums16_at_1_lane_copies_the_values() => Check<SimdScalar, float>(seed: 3);

    private static void Check<TS, TV>(int seed) where TS : ISimd<TV> where TV : struct
    {
        var rnd = new Random(seed);
        int w = TS.Width;
        var v = new float[16 * w];
        var sums = new float[16];
        for (int draw = 0; draw < 2000; draw++)
        {
            for (int i = 0; i < v.Length; i++) v[i] = (float)(rnd.NextDouble() * 2 - 1) * MathF.Pow(2, rnd.Next(-8, 8));
            fixed (float* pv = v, ps = sums)
            {
                TS.Sums16(pv, ps);
                for (int n = 0; n < 16; n++)
                {
                    float expected = TS.Sum(TS.Load(pv + n * w));
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(ps[n]),
                        $"draw {draw}, vector {n}: Sums16 gave {ps[n]:R}, Sum {expected:R}");
                }
            }
        }
    }
}
