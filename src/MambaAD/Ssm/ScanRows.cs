// Data movement of the scan kernels (layout in ScanKernels.cs): a block's W channels between the channels-last
// (L, Dg) tensors and the kernels' (L, W) / (L, dgp) buffers, row gathers into scan order and scatter-adds back to
// pixel order (spec §8.2–8.3), and the per-block parameter gradients out (dA, dD, dbias, dWdt; the parameters come in
// through ParamLanes).
// Padded lanes (channels ≥ Dg in the last block) are loaded as 0, so their states and outputs stay 0.

using System.Runtime.CompilerServices;

namespace MambaAD.Ssm;

internal static unsafe class ScanRows
{
    /// <summary>Channels c0…c0+nc of L channels-last rows (<paramref name="rowLength"/> floats apart) at src → dst
    /// (L rows of <paramref name="dstStride"/>, default W), zero-padded to W lanes.</summary>
    public static void RowsIn<TS, TV>(float* src, int L, int rowLength, int nc, float* dst, int dstStride = 0)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        if (dstStride == 0) dstStride = w;
        if (nc == w)
        {
            for (int t = 0; t < L; t++) TS.Store(dst + (long)t * dstStride, TS.Load(src + (long)t * rowLength));
            return;
        }
        for (int t = 0; t < L; t++)
        {
            float* s = src + (long)t * rowLength, d = dst + (long)t * dstStride;
            for (int j = 0; j < nc; j++) d[j] = s[j];
            for (int j = nc; j < w; j++) d[j] = 0f;
        }
    }

    /// <summary>Inverse of <see cref="RowsIn"/> for the first nc lanes.</summary>
    public static void RowsOut<TS, TV>(float* src, int L, int rowLength, int nc, float* dst, int srcStride = 0)
        where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        if (srcStride == 0) srcStride = w;
        if (nc == w)
        {
            for (int t = 0; t < L; t++) TS.Store(dst + (long)t * rowLength, TS.Load(src + (long)t * srcStride));
            return;
        }
        for (int t = 0; t < L; t++)
        {
            float* s = src + (long)t * srcStride, d = dst + (long)t * rowLength;
            for (int j = 0; j < nc; j++) d[j] = s[j];
        }
    }

    /// <summary>Row path[i] of src → row i of dst, for i &lt; len; rows of <paramref name="rowFloats"/> floats,
    /// <paramref name="dstStride"/> apart in dst and <paramref name="srcStride"/> (default rowFloats) in src.</summary>
    public static void GatherRows<TS, TV>(float* src, float* dst, long* path, int len, long rowFloats, long dstStride, long srcStride = 0)
        where TS : ISimd<TV> where TV : struct
    {
        if (srcStride == 0) srcStride = rowFloats;
        for (int i = 0; i < len; i++) CopyRow<TS, TV>(src + path[i] * srcStride, dst + i * dstStride, rowFloats);
    }

    /// <summary>
    /// n floats from src to dst (buffers that do not overlap) in whole vectors, the last one overlapping the one before
    /// when n is not a multiple of the width: a few instructions per row of the gathers (36–64 floats of x_proj, 128–1024
    /// of u and g), where a call to Buffer.MemoryCopy copied x_proj's rows 1.7 × slower (docs/performance.md, phase 29).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CopyRow<TS, TV>(float* src, float* dst, long n) where TS : ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        if (n < w)
        {
            for (long j = 0; j < n; j++) dst[j] = src[j];
            return;
        }
        long last = n - w;
        for (long j = 0; j < last; j += w) TS.Store(dst + j, TS.Load(src + j));
        TS.Store(dst + last, TS.Load(src + last));
    }

    /// <summary>Row i of src (rows <paramref name="srcStride"/> apart) added into row path[i] of dst (rows of dgp
    /// floats, a multiple of the width).</summary>
    public static void AddRowsAt<TS, TV>(float* src, int srcStride, float* dst, long* path, int len, int dgp)
        where TS : ISimd<TV> where TV : struct
    {
        for (int i = 0; i < len; i++)
        {
            float* d = dst + path[i] * dgp, s = src + (long)i * srcStride;
            for (int j = 0; j < dgp; j += TS.Width) TS.Store(d + j, TS.Add(TS.Load(d + j), TS.Load(s + j)));
        }
    }

    /// <summary>dD, dbias, dA and dWdt of block cb of direction k from their per-lane accumulators into the batch-b partials.</summary>
    public static void StoreParamPartials(in ScanParams p, int b, int k, int cb, int w, float* dDacc, float* dBiasAcc,
        float* dAacc, float* dWacc)
    {
        int N = p.N, R = p.R, c0 = cb * w, nc = Math.Min(w, p.Dg - c0);
        long row = (long)b * p.K * p.Dg + (long)k * p.Dg + c0, nw = (long)N * w, rw = (long)R * w;
        for (int j = 0; j < nc; j++)
        {
            p.dD[row + j] = dDacc[cb * w + j];
            p.dBias[row + j] = dBiasAcc[cb * w + j];
            for (int n = 0; n < N; n++) p.dA[(row + j) * N + n] = dAacc[cb * nw + n * w + j];
            for (int r = 0; r < R; r++) p.dWdt[(row + j) * R + r] = dWacc[cb * rw + r * w + j];
        }
    }
}
