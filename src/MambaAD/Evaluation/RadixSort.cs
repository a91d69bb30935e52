namespace MambaAD.Evaluation;

/// <summary>LSD radix sort of 32-bit keys (3 passes of 11 bits), optionally carrying a payload along; stable.</summary>
internal static class RadixSort
{
    [ThreadStatic] private static uint[]? _keys;
    [ThreadStatic] private static double[]? _payload;

    /// <summary>Sorts the first <paramref name="n"/> keys ascending, and <paramref name="payload"/> with them.</summary>
    public static void Sort(uint[] keys, int n, double[]? payload)
    {
        if (n < 2) return;
        var tmpKeys = _keys is { } k && k.Length >= n ? k : _keys = new uint[Math.Max(n, keys.Length)];
        var tmpPayload = payload is null ? null : _payload is { } p && p.Length >= n ? p : _payload = new double[Math.Max(n, payload.Length)];
        Span<int> count = stackalloc int[3 * 2048];
        count.Clear();
        for (int i = 0; i < n; i++)
        {
            uint key = keys[i];
            count[(int)(key & 2047)]++;
            count[2048 + (int)((key >> 11) & 2047)]++;
            count[4096 + (int)(key >> 22)]++;
        }
        uint[] srcK = keys, dstK = tmpKeys;
        double[]? srcP = payload, dstP = tmpPayload;
        for (int pass = 0; pass < 3; pass++)
        {
            var c = count.Slice(pass * 2048, 2048);
            int sum = 0;
            for (int i = 0; i < c.Length; i++) { int v = c[i]; c[i] = sum; sum += v; }
            int shift = 11 * pass;
            for (int i = 0; i < n; i++)
            {
                int at = c[(int)((srcK[i] >> shift) & 2047)]++;
                dstK[at] = srcK[i];
                if (srcP is not null) dstP![at] = srcP[i];
            }
            (srcK, dstK) = (dstK, srcK);
            (srcP, dstP) = (dstP, srcP);
        }
        // Three passes end in the scratch arrays: copy back.
        Array.Copy(srcK, keys, n);
        if (payload is not null) Array.Copy(srcP!, payload, n);
    }
}
