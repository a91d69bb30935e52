using System.Runtime.CompilerServices;

namespace MambaAD.Tests;

/// <summary>
/// The process-wide policies the CLI applies at start (Program.Main), applied here before any test runs, so the
/// tests exercise the kernels users run: MKL's AVX-512 GEMMs on AMD CPUs that have AVX-512 (Util/MklVendorCheck).
/// </summary>
internal static class ProcessSetup
{
    [ModuleInitializer]
    internal static void Apply() => MambaAD.Util.MklVendorCheck.Bypass();
}
