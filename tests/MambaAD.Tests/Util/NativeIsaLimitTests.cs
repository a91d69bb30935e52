using System.Runtime.InteropServices;
using MambaAD.Util;

namespace MambaAD.Tests.Util;

/// <summary>
/// libtorch's libraries at .NET's vector width (Util/NativeIsaLimit, applied to the test process by ProcessSetup as the
/// CLI applies it): where .NET has no AVX-512 (run the suite with DOTNET_EnableAVX512=0 to take that path on an
/// AVX-512 machine) MKL, oneDNN and ATen read AVX2 from the C environment; where it has AVX-512 nothing is set.
/// </summary>
public class NativeIsaLimitTests
{
    private static bool LinuxX64 => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;

    [Fact]
    public void The_libraries_read_AVX2_exactly_where_NET_runs_without_AVX512()
    {
        if (!LinuxX64) return;
        bool limited = NativeIsaLimit.Apply();   // a second call: the first was ProcessSetup's, before any tensor
        Assert.Equal(!NativeIsaLimit.DotnetHasAvx512, limited);
        foreach (var (name, value) in NativeIsaLimit.Variables)
        {
            string? user = Environment.GetEnvironmentVariable(name);   // .NET's copy: what the process started with
            string? seen = NativeEnvironment.Get(name);
            if (user is not null) Assert.Equal(user, seen);   // the user's setting always wins
            else if (limited) Assert.Equal(value, seen);
            else Assert.Null(seen);
        }
        Assert.Contains(limited ? "AVX2 in MKL, oneDNN and ATen" : "as each library chooses", NativeIsaLimit.State);
    }

    [Fact]
    public void SetIfUnset_keeps_a_value_that_is_there()
    {
        if (!LinuxX64) return;
        string name = $"MAMBAAD_TEST_{Guid.NewGuid():N}";
        Assert.Null(NativeEnvironment.Get(name));
        Assert.True(NativeEnvironment.SetIfUnset(name, "first"));
        Assert.False(NativeEnvironment.SetIfUnset(name, "second"));
        Assert.Equal("first", NativeEnvironment.Get(name));
    }
}
