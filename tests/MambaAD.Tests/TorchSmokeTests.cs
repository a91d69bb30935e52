using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Tests;

/// <summary>Proves that libtorch loads (the libstdc++ compatibility patch of build/LibTorchCompat.targets worked).</summary>
public class TorchSmokeTests
{
    [Fact]
    public void CreatesATensorAndComputes()
    {
        using var t = arange(6, dtype: float32).reshape(2, 3);
        using var s = t.sum();
        Assert.Equal(15f, s.item<float>());
        Assert.Equal(new long[] { 2, 3 }, t.shape);
    }
}
