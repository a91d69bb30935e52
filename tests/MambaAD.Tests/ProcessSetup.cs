using System.Runtime.CompilerServices;

namespace MambaAD.Tests;

/// <summary>
/// The process-wide policies the CLI applies at start (Program.Main), applied here before any test runs, so the
/// tests exercise the kernels users run: libtorch's libraries at .NET's vector width (Util/NativeIsaLimit), MKL's
/// kernels chosen by instruction set on AMD CPUs (Util/MklVendorCheck).
/// </summary>
internal static class ProcessSetup
{
    [ModuleInitializer]
    internal static void Apply()
    {
        MambaAD.Util.NativeIsaLimit.Apply();
        MambaAD.Util.MklVendorCheck.Bypass();
    }
}
