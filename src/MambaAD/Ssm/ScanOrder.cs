using System.Numerics;
using System.Collections.Concurrent;

namespace MambaAD.Ssm;

/// <summary>
/// Scan orders (spec §8.1) and the K direction paths built from them (spec §8.2). <c>Locs(type, S)[t]</c> is the
/// row-major flat index r·S + c visited at step t; <c>Paths(type, S, K)[k, t]</c> = π_k[t] is the original pixel
/// that direction k reads at step t. Built once per (type, side, directions) and cached.
/// </summary>
internal static class ScanOrder
{
    private static readonly ConcurrentDictionary<(ScanType, int), long[]> LocsCache = new();
    private static readonly ConcurrentDictionary<(ScanType, int, int), long[]> PathsCache = new();

    /// <summary>Parses a scan name as the official config spells it ("hilbert", "sweep", …).</summary>
    public static ScanType Parse(string name) => name.ToLowerInvariant() switch
    {
        "sweep" => ScanType.Sweep,
        "scan" => ScanType.Scan,
        "zorder" => ScanType.Zorder,
        "zigzag" => ScanType.Zigzag,
        "hilbert" => ScanType.Hilbert,
        _ => throw new MambaADException($"unknown scan type '{name}': use one of sweep, scan, zorder, zigzag, hilbert", "Scan"),
    };

    /// <summary>The official lower-case name of a scan type.</summary>
    public static string Name(ScanType type) => type.ToString().ToLowerInvariant();

    /// <summary>The visiting order of an S×S map: locs[t] = r·S + c. A copy the caller may keep.</summary>
    public static long[] Locs(ScanType type, int side) => (long[])LocsCache.GetOrAdd((type, side), k => Build(k.Item1, k.Item2)).Clone();

    /// <summary>argsort(locs): the step at which each pixel is visited.</summary>
    public static long[] LocsInverse(ScanType type, int side)
    {
        var locs = Locs(type, side);
        var inv = new long[locs.Length];
        for (int t = 0; t < locs.Length; t++) inv[locs[t]] = t;
        return inv;
    }

    /// <summary>
    /// The K direction paths, row-major (K, L): 0 V0, 1 V1 (transpose), 2 V2 (rot90 ccw), 3 V3 (mirror), then the same
    /// reversed in time (spec §8.2). K = 2 uses V0 and its reverse; K = 4 uses V0, V1 and their reverses.
    /// With Hilbert, directions 0≡7 and 3≡4 visit pixels in the same order: reproduced on purpose, not fixed.
    /// </summary>
    public static long[] Paths(ScanType type, int side, int directions) =>
        (long[])PathsCache.GetOrAdd((type, side, directions), k => BuildPaths(k.Item1, k.Item2, k.Item3)).Clone();

    private static long[] BuildPaths(ScanType type, int side, int directions)
    {
        if (directions is not (2 or 4 or 8))
            throw new MambaADException($"{directions} scan directions are not supported: use 2, 4 or 8", "Directions");
        var locs = Locs(type, side);
        int l = locs.Length, views = directions / 2, s = side;
        var paths = new long[directions * l];
        for (int v = 0; v < views; v++)
        {
            for (int t = 0; t < l; t++)
            {
                long r = locs[t] / s, c = locs[t] % s;
                long p = v switch
                {
                    0 => r * s + c,             // V0 identity
                    1 => c * s + r,             // V1 transpose
                    2 => c * s + (s - 1 - r),   // V2 rot90 counter-clockwise: view (i, j) reads (j, S−1−i)
                    _ => r * s + (s - 1 - c),   // V3 transpose of V2 = left-right mirror
                };
                paths[v * l + t] = p;
                paths[(v + views) * l + (l - 1 - t)] = p; // directions K/2… are the same sequences reversed in time
            }
        }
        return paths;
    }

    private static long[] Build(ScanType type, int side)
    {
        if (side < 1) throw new ArgumentOutOfRangeException(nameof(side), side, "map side must be positive");
        if (type is ScanType.Hilbert or ScanType.Zorder && !BitOperations.IsPow2(side))
            return Cropped(type, side);
        return type switch
        {
            ScanType.Sweep => Sweep(side),
            ScanType.Scan => Snake(side),
            ScanType.Zorder => Morton(side),
            ScanType.Zigzag => Zigzag(side),
            ScanType.Hilbert => Hilbert(side),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }

    /// <summary>
    /// Hilbert and Z-order curves exist for power-of-two sides only (the official model runs at 256², sides 8…64).
    /// For other sides (e.g. 224² → 7…56) we follow the enclosing power-of-two curve and skip the cells outside the
    /// map: an extension of ours, identical to the official order whenever the side is a power of two.
    /// </summary>
    private static long[] Cropped(ScanType type, int side)
    {
        int p = (int)BitOperations.RoundUpToPowerOf2((uint)side);
        var full = Build(type, p);
        var locs = new long[side * side];
        int t = 0;
        foreach (var q in full)
        {
            long r = q / p, c = q % p;
            if (r < side && c < side) locs[t++] = r * side + c;
        }
        return locs;
    }

    private static long[] Sweep(int s)
    {
        var locs = new long[s * s];
        for (int t = 0; t < locs.Length; t++) locs[t] = t;
        return locs;
    }

    /// <summary>Boustrophedon: even rows left → right, odd rows right → left.</summary>
    private static long[] Snake(int s)
    {
        var locs = new long[s * s];
        for (int r = 0, t = 0; r < s; r++)
            for (int j = 0; j < s; j++, t++)
                locs[t] = r * s + (r % 2 == 0 ? j : s - 1 - j);
        return locs;
    }

    /// <summary>Morton order: even bits of t give the column, odd bits the row (pyzorder's rc() with the code's swap).</summary>
    private static long[] Morton(int s)
    {
        var locs = new long[s * s];
        for (int t = 0; t < locs.Length; t++)
        {
            long row = 0, col = 0;
            for (int bit = 0; (1L << (2 * bit)) < locs.Length; bit++)
            {
                col |= ((t >> (2 * bit)) & 1L) << bit;
                row |= ((t >> (2 * bit + 1)) & 1L) << bit;
            }
            locs[t] = row * s + col;
        }
        return locs;
    }

    /// <summary>Anti-diagonals i = r + c; even i move up-right, odd i move down-left.</summary>
    private static long[] Zigzag(int s)
    {
        var locs = new long[s * s];
        int t = 0;
        for (int i = 0; i <= 2 * s - 2; i++)
            for (int j = Math.Max(0, i - s + 1); j <= Math.Min(i, s - 1); j++)
                locs[t++] = i % 2 == 0 ? (long)(i - j) * s + j : (long)j * s + (i - j);
        return locs;
    }

    /// <summary>Skilling's transpose algorithm as numpy-hilbert-curve decodes it (spec §8.1): column = X0, row = X1.</summary>
    private static long[] Hilbert(int s)
    {
        int b = BitOperations.Log2((uint)s);
        var locs = new long[s * s];
        for (long t = 0; t < locs.Length; t++)
        {
            long g = t ^ (t >> 1);
            var x = new long[2];
            for (int k = 0; k < b; k++)
            {
                x[0] |= ((g >> (2 * k + 1)) & 1L) << k;
                x[1] |= ((g >> (2 * k)) & 1L) << k;
            }
            for (long q = 2; q < s; q <<= 1)
            {
                long p = q - 1;
                for (int i = 1; i >= 0; i--)
                {
                    if ((x[i] & q) != 0) x[0] ^= p;
                    else
                    {
                        long swap = (x[0] ^ x[i]) & p;
                        x[0] ^= swap;
                        x[i] ^= swap;
                    }
                }
            }
            locs[t] = x[1] * s + x[0];
        }
        return locs;
    }
}
