using MambaAD.Util;

namespace MambaAD.Tests.Util;

/// <summary>The CLI's NNPACK switch (Util/Nnpack) finds libtorch's context functions and takes effect.</summary>
public class NnpackTests
{
    [Fact]
    public void Nnpack_can_be_turned_off_through_libtorchs_context()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(Nnpack.Disable(), "at::Context::setUserEnabledNNPACK was not found in libtorch_cpu.so (renamed in this libtorch?)");
    }
}
