using static TorchSharp.torch;

namespace MambaAD.Util;

/// <summary>
/// The kernels' per-task partial sums of a weight gradient added up in task order: the same bits at any thread count
/// (libtorch's sum may split the rows across threads), as a resumed training run must give.
/// </summary>
internal static unsafe class OrderedSum
{
    /// <summary>Σ over the first dimension of a contiguous float32 (tasks, …) tensor, row after row.</summary>
    public static Tensor OverRows(Tensor rows)
    {
        long count = rows.shape[0], n = rows.numel() / count;
        var sum = rows[0].clone();
        float* s = TensorMemory.Floats(sum), r = TensorMemory.Floats(rows);
        for (long k = 1; k < count; k++)
        {
            float* row = r + k * n;
            for (long i = 0; i < n; i++) s[i] += row[i];
        }
        return sum;
    }
}
