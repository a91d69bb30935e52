using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Model;

/// <summary>
/// The official <c>scans</c> submodule's state: <c>index_flat</c> = locs and <c>index_flat_inv</c> = argsort(locs), int64
/// (1, 1, L) (spec §18). They are checkpoint entries, not trainable; the model reads its direction paths from the
/// same scan order, and a loaded checkpoint is checked against them.
/// </summary>
internal sealed class ScanIndices : nn.Module
{
    private readonly Tensor index_flat;
    private readonly Tensor index_flat_inv;

    public ScanIndices(Ssm.ScanType type, int side) : base("scans")
    {
        index_flat = tensor(Ssm.ScanOrder.Locs(type, side), dtype: int64).reshape(1, 1, -1);
        index_flat_inv = tensor(Ssm.ScanOrder.LocsInverse(type, side), dtype: int64).reshape(1, 1, -1);
        RegisterComponents();
    }
}
