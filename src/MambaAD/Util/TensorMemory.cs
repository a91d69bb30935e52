using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Util;

/// <summary>Raw pointers into a CPU tensor's own memory, for the SIMD kernels that read and write it in place.</summary>
internal static unsafe class TensorMemory
{
    /// <summary>The first element of a contiguous float32 tensor. (storage&lt;T&gt;() must name the tensor's own element
    /// type: another T converts into a temporary copy.)</summary>
    public static float* Floats(Tensor t) =>
        t.dtype == ScalarType.Float32 && t.is_contiguous()
            ? (float*)t.storage<float>().data_ptr() + t.storage_offset()
            : throw new InvalidOperationException($"kernel needs a contiguous float32 tensor, got {t.dtype}");

    /// <summary>
    /// Whether a (B, C, H, W) tensor is a view of (B, H, W, C) memory and not also NCHW-contiguous (a 1×1 map, or one
    /// channel, is both: the NCHW kernels take those).
    /// </summary>
    public static bool IsChannelsLast(Tensor x) => x.dim() == 4 && !x.is_contiguous() && x.permute(0, 2, 3, 1).is_contiguous();

    /// <summary>A (B, C, H, W) tensor as a view of (B, H, W, C) memory: itself when it already is one, else a copy.</summary>
    public static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>The first element of a contiguous float64 tensor.</summary>
    public static double* Doubles(Tensor t) =>
        t.dtype == ScalarType.Float64 && t.is_contiguous()
            ? (double*)t.storage<double>().data_ptr() + t.storage_offset()
            : throw new InvalidOperationException($"kernel needs a contiguous float64 tensor, got {t.dtype}");

    /// <summary>The first element of a contiguous int64 tensor.</summary>
    public static long* Longs(Tensor t) =>
        t.dtype == ScalarType.Int64 && t.is_contiguous()
            ? (long*)t.storage<long>().data_ptr() + t.storage_offset()
            : throw new InvalidOperationException($"kernel needs a contiguous int64 tensor, got {t.dtype}");
}
