using System.Runtime.Intrinsics;
using MambaAD.Ssm;

namespace MambaAD.Tests.Ssm;

/// <summary>
/// GatherRows copies row path[i] of its source to row i of its destination at each vector width, for row lengths
/// below, at and between multiples of the width (the last vector overlaps the one before it), with source rows further
/// apart than their length (x_proj's rows of one direction among K); and writes nothing outside the rows.
/// </summary>
public unsafe class ScanRowsTests
{
    [Fact]
    public void GatherRows_copies_the_path_rows_at_16_lanes()
    {
        if (!Vector512.IsHardwareAccelerated) return;   // the 16-lane kernels do not run here
        Check<Simd512, Vector512<float>>(seed: 1);
    }

    [Fact]
    public void GatherRows_copies_the_path_rows_at_8_lanes()
    {
        if (!Vector256.IsHardwareAccelerated) return;
        Check<Simd256, Vector256<float>>(seed: 2);
    }

    [Fact]
    public void GatherRows_copies_the_path_rows_at_1_lane() => Check<SimdScalar, float>(seed: 3);

    private static void Check<TS, TV>(int seed) where TS : ISimd<TV> where TV : struct
    {
        var rnd = new Random(seed);
        foreach (int rowFloats in new[] { 1, 5, 8, 12, 16, 20, 36, 40, 48, 64, 128 })
        foreach (int spare in new[] { 0, 3 * rowFloats + 7 })   // source rows rowFloats (+ spare) floats apart
        {
            int rows = 50, len = 37, srcStride = rowFloats + spare, dstStride = rowFloats + 3;
            var src = new float[rows * srcStride];
            for (int i = 0; i < src.Length; i++) src[i] = rnd.NextSingle();
            var path = Enumerable.Range(0, len).Select(_ => (long)rnd.Next(rows)).ToArray();
            var dst = new float[len * dstStride];
            Array.Fill(dst, float.NaN);
            fixed (float* ps = src, pd = dst)
            fixed (long* pp = path)
                ScanRows.GatherRows<TS, TV>(ps, pd, pp, len, rowFloats, dstStride, spare == 0 ? 0 : srcStride);
            for (int i = 0; i < len; i++)
            for (int j = 0; j < dstStride; j++)
            {
                float got = dst[i * dstStride + j];
                if (j < rowFloats) Assert.True(got == src[path[i] * srcStride + j], $"width {TS.Width}, rows of {rowFloats} (stride {srcStride}): row {i}, float {j}");
                else Assert.True(float.IsNaN(got), $"width {TS.Width}, rows of {rowFloats}: wrote past row {i} at float {j}");
            }
        }
    }
}
