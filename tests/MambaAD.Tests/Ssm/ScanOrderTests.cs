using System.Security.Cryptography;
using System.Text;
using MambaAD.Ssm;

namespace MambaAD.Tests.Ssm;

public class ScanOrderTests
{
    [Theory]
    [InlineData(ScanType.Sweep, "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")]
    [InlineData(ScanType.Scan, "0 1 2 3 7 6 5 4 8 9 10 11 15 14 13 12")]
    [InlineData(ScanType.Zorder, "0 1 4 5 2 3 6 7 8 9 12 13 10 11 14 15")]
    [InlineData(ScanType.Zigzag, "0 1 4 8 5 2 3 6 9 12 13 10 7 11 14 15")]
    [InlineData(ScanType.Hilbert, "0 1 5 4 8 12 13 9 10 14 15 11 7 6 2 3")]
    public void FourByFourOrdersMatchTheSpecTable(ScanType type, string expected) // spec §8.1 worked examples
        => Assert.Equal(expected, string.Join(' ', ScanOrder.Locs(type, 4)));

    [Fact]
    public void HilbertEightByEightMatchesTheSpec()
    {
        const string expected = "0 8 9 1 2 3 11 10 18 19 27 26 25 17 16 24 32 33 41 40 48 56 57 49 50 58 59 51 43 42 34 35 " +
                                "36 37 45 44 52 60 61 53 54 62 63 55 47 46 38 39 31 23 22 30 29 28 20 21 13 12 4 5 6 14 15 7";
        Assert.Equal(expected, string.Join(' ', ScanOrder.Locs(ScanType.Hilbert, 8)));
    }

    [Theory] // spec §8.1 test vectors: Σ t·locs[t] and MD5 of the comma-joined decimals
    [InlineData(8, 65_688L, "9c6793f6474cd31e89c8e64f5c45d369")]
    [InlineData(16, 4_231_504L, "97e18fbe3bd5f3d1f3349127679f71f6")]
    [InlineData(32, 270_148_384L, "81fd074d435cc346be958839193c7800")]
    [InlineData(64, 17_243_064_384L, "41ffbf77e0e47f0ec2b5b4199ab97484")]
    public void HilbertChecksums(int side, long weightedSum, string md5)
    {
        var locs = ScanOrder.Locs(ScanType.Hilbert, side);
        long sum = 0;
        for (int t = 0; t < locs.Length; t++) sum += t * locs[t];
        Assert.Equal(weightedSum, sum);
        var hash = MD5.HashData(Encoding.ASCII.GetBytes(string.Join(',', locs)));
        Assert.Equal(md5, Convert.ToHexStringLower(hash));
        Assert.Equal(0, locs[0]);
        Assert.Equal(side - 1, locs[^1]); // starts at (0, 0), ends at (0, S−1)
    }

    [Theory]
    [InlineData(ScanType.Sweep)] [InlineData(ScanType.Scan)] [InlineData(ScanType.Zorder)]
    [InlineData(ScanType.Zigzag)] [InlineData(ScanType.Hilbert)]
    public void EveryOrderIsAPermutationAndPathsAreToo(ScanType type)
    {
        foreach (int side in new[] { 1, 2, 4, 7, 8, 14, 16, 28, 32, 64 })
        {
            var locs = ScanOrder.Locs(type, side);
            Assert.Equal(Enumerable.Range(0, side * side).Select(i => (long)i), locs.Order());
            var paths = ScanOrder.Paths(type, side, 8);
            for (int k = 0; k < 8; k++)
                Assert.Equal(Enumerable.Range(0, side * side).Select(i => (long)i), paths.Skip(k * side * side).Take(side * side).Order());
        }
    }

    [Fact]
    public void HilbertDirectionsRepeatAsTheOfficialCodeDoes() // spec §8.2 "Surprise": 0 ≡ 7 and 3 ≡ 4
    {
        foreach (int side in new[] { 4, 8, 16, 32, 64 })
        {
            int l = side * side;
            var p = ScanOrder.Paths(ScanType.Hilbert, side, 8);
            Assert.Equal(p.Take(l), p.Skip(7 * l).Take(l));
            Assert.Equal(p.Skip(3 * l).Take(l), p.Skip(4 * l).Take(l));
            Assert.NotEqual(p.Take(l), p.Skip(l).Take(l));
        }
    }

    [Fact]
    public void FourByFourHilbertDirectionGridsMatchTheSpec()
    {
        // spec §8.2 worked example, row 0 of each direction's visit-order grid: grid[pixel] = step.
        string[] firstRows = ["0 1 14 15", "0 3 4 5", "5 4 3 0", "15 14 1 0", "15 14 1 0", "15 12 11 10", "10 11 12 15", "0 1 14 15"];
        var p = ScanOrder.Paths(ScanType.Hilbert, 4, 8);
        for (int k = 0; k < 8; k++)
        {
            var grid = new long[16];
            for (int t = 0; t < 16; t++) grid[p[k * 16 + t]] = t;
            Assert.Equal(firstRows[k], string.Join(' ', grid.Take(4)));
        }
    }

    [Fact]
    public void FewerDirectionsUseTheFirstViewsAndTheirReverses()
    {
        var p8 = ScanOrder.Paths(ScanType.Hilbert, 8, 8);
        var p4 = ScanOrder.Paths(ScanType.Hilbert, 8, 4);
        var p2 = ScanOrder.Paths(ScanType.Hilbert, 8, 2);
        Assert.Equal(p8.Take(128), p4.Take(128));                     // V0, V1
        Assert.Equal(p8.Skip(4 * 64).Take(128), p4.Skip(128));        // V0, V1 reversed
        Assert.Equal(p8.Take(64).Concat(p8.Skip(4 * 64).Take(64)), p2);
        Assert.Throws<MambaADException>(() => ScanOrder.Paths(ScanType.Hilbert, 8, 3));
    }
}
