using System.Collections.Concurrent;
using static TorchSharp.torch;

namespace MambaAD.Ssm;

/// <summary>
/// The K direction paths of <see cref="ScanOrder.Paths"/> as the (K, L) int64 tensor the scan op reads, one per (scan,
/// side, K, device), built once and kept for the process (detached from every dispose scope: callers must not dispose it).
/// </summary>
internal static class PathTensors
{
    private static readonly ConcurrentDictionary<(ScanType, int, int, string), Tensor> Cache = new();

    public static Tensor Get(ScanType type, int side, int k, Device? device = null) =>
        Cache.GetOrAdd((type, side, k, (device ?? CPU).ToString()), key =>
        {
            var t = tensor(ScanOrder.Paths(type, side, k), dtype: int64).reshape(k, -1).to(device ?? CPU);
            t.DetachFromDisposeScope();
            return t;
        });
}
