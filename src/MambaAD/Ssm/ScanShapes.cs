using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>Validates selective-scan arguments once, at the public boundary, naming the tensor and the shapes.</summary>
internal static class ScanShapes
{
    public static void Check(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias)
    {
        if (u.dim() != 3) throw new ArgumentException($"u must be (B, D, L), got {Fmt(u)}");
        long b = u.shape[0], d = u.shape[1], l = u.shape[2];
        Expect(delta, "delta", b, d, l);
        if (A.dim() != 2 || A.shape[0] != d) throw new ArgumentException($"A must be ({d}, N), got {Fmt(A)}");
        long n = A.shape[1];
        if (B.dim() != 4 || B.shape[0] != b || B.shape[2] != n || B.shape[3] != l)
            throw new ArgumentException($"B must be ({b}, G, {n}, {l}), got {Fmt(B)}");
        long g = B.shape[1];
        if (d % g != 0) throw new ArgumentException($"channels {d} must be a multiple of the groups {g}");
        Expect(C, "C", b, g, n, l);
        Expect(D, "D", d);
        Expect(deltaBias, "deltaBias", d);
    }

    /// <summary>ScanAndMerge: u (Bt, d, L), delta (Bt, K, d, L), A (K·d, N), B, C (Bt, K, N, L), D, bias (K·d), paths (K, L).</summary>
    public static void CheckMerge(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor D, Tensor deltaBias, Tensor paths)
    {
        if (u.dim() != 3) throw new ArgumentException($"u must be (B, d, L), got {Fmt(u)}");
        if (paths.dim() != 2) throw new ArgumentException($"paths must be (K, L), got {Fmt(paths)}");
        long b = u.shape[0], d = u.shape[1], l = u.shape[2], k = paths.shape[0];
        Expect(paths, "paths", k, l);
        if (paths.dtype != ScalarType.Int64) throw new ArgumentException($"paths must be int64, got {paths.dtype}");
        Expect(delta, "delta", b, k, d, l);
        if (A.dim() != 2 || A.shape[0] != k * d) throw new ArgumentException($"A must be ({k * d}, N), got {Fmt(A)}");
        long n = A.shape[1];
        Expect(B, "B", b, k, n, l);
        Expect(C, "C", b, k, n, l);
        Expect(D, "D", k * d);
        Expect(deltaBias, "deltaBias", k * d);
    }

    /// <summary>ScanAndMergeProjected: u (Bt, L, d), xDbl (Bt, L, K, R + 2N), dtWeight (K, d, R), A (K·d, N), D, bias (K·d), paths (K, L).</summary>
    public static void CheckProjected(Tensor u, Tensor xDbl, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        var (b, l, _, k, n, r) = CheckScan(u, dtWeight, A, D, deltaBias, paths);
        Expect(xDbl, "xDbl", b, l, k, r + 2 * n);
    }

    /// <summary>ScanAndMergeXProj: as <see cref="CheckProjected"/>, with xProjWeight (K, R + 2N, d) in place of xDbl.</summary>
    public static void CheckXProj(Tensor u, Tensor xProjWeight, Tensor dtWeight, Tensor A, Tensor D, Tensor deltaBias, Tensor paths)
    {
        var (_, _, d, k, n, r) = CheckScan(u, dtWeight, A, D, deltaBias, paths);
        Expect(xProjWeight, "xProjWeight", k, r + 2 * n, d);
    }

    private static (long B, long L, long D, long K, long N, long R) CheckScan(Tensor u, Tensor dtWeight, Tensor A, Tensor D,
        Tensor deltaBias, Tensor paths)
    {
        if (u.dim() != 3) throw new ArgumentException($"u must be (B, L, d), got {Fmt(u)}");
        if (paths.dim() != 2) throw new ArgumentException($"paths must be (K, L), got {Fmt(paths)}");
        if (paths.dtype != ScalarType.Int64) throw new ArgumentException($"paths must be int64, got {paths.dtype}");
        long b = u.shape[0], l = u.shape[1], d = u.shape[2], k = paths.shape[0];
        Expect(paths, "paths", k, l);
        if (A.dim() != 2 || A.shape[0] != k * d) throw new ArgumentException($"A must be ({k * d}, N), got {Fmt(A)}");
        if (dtWeight.dim() != 3 || dtWeight.shape[0] != k || dtWeight.shape[1] != d)
            throw new ArgumentException($"dtWeight must be ({k}, {d}, R), got {Fmt(dtWeight)}");
        Expect(D, "D", k * d);
        Expect(deltaBias, "deltaBias", k * d);
        return (b, l, d, k, A.shape[1], dtWeight.shape[2]);
    }

    private static void Expect(Tensor t, string name, params long[] shape)
    {
        if (!t.shape.SequenceEqual(shape))
            throw new ArgumentException($"{name} must be ({string.Join(", ", shape)}), got {Fmt(t)}");
    }

    private static string Fmt(Tensor t) => "(" + string.Join(", ", t.shape) + ")";
}
