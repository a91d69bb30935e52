using System.Diagnostics;

namespace MambaAD.Tests.Util;

/// <summary>A fact that needs jemalloc installed where the <c>./mambaad</c> launcher looks for it (Linux).</summary>
public sealed class JemallocFactAttribute : FactAttribute
{
    /// <summary>Where the launcher looks, in its order.</summary>
    public static readonly string? Library = new[] { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib" }
        .Select(d => Path.Combine(d, "libjemalloc.so.2")).FirstOrDefault(File.Exists);

    public JemallocFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "the launcher's preload: Linux only";
        else if (Library is null) Skip = "libjemalloc.so.2 is not installed (apt install libjemalloc2; .ci/run installs it)";
    }
}

/// <summary>
/// The <c>./mambaad</c> launcher's allocator policy (README, "Performance"): it preloads jemalloc with its freed pages
/// kept when libjemalloc.so.2 is installed, leaves glibc when asked, and refuses a path that is not there. Checked on
/// the real script running the real CLI, which reports the allocator it got (<c>mambaad info</c> reads jemalloc's live
/// settings through mallctl, so a preload that did not take shows as glibc).
/// </summary>
public sealed class NativeAllocatorTests
{

    [JemallocFact]
    public void Launcher_preloads_an_installed_jemalloc_with_its_freed_pages_kept()
    {
        var (code, stdout, stderr) = Launch(["info"], new() { ["MAMBAAD_ALLOCATOR"] = null, ["MALLOC_CONF"] = null });
        Assert.True(code == 0, stderr);
        // Kept and reused for any size: with jemalloc's default fit (6) a training run's memory grew without end.
        Assert.Contains(stdout, l => l.Contains("allocator") && l.Contains("jemalloc 5") && l.Contains("dirty_decay_ms -1")
                                     && l.Contains("lg_extent_max_active_fit 20"));
        // A MALLOC_CONF of the user's own wins over the launcher's default.
        (code, stdout, stderr) = Launch(["info"], new() { ["MAMBAAD_ALLOCATOR"] = null, ["MALLOC_CONF"] = "dirty_decay_ms:5000" });
        Assert.True(code == 0, stderr);
        Assert.Contains(stdout, l => l.Contains("jemalloc") && l.Contains("dirty_decay_ms 5000") && l.Contains("lg_extent_max_active_fit 6"));
    }

    [LinuxFact]
    public void Launcher_leaves_glibc_when_asked_and_refuses_a_missing_library()
    {
        var (code, stdout, stderr) = Launch(["info"], new() { ["MAMBAAD_ALLOCATOR"] = "glibc" });
        Assert.True(code == 0, stderr);
        Assert.Contains(stdout, l => l.Contains("allocator") && l.Contains("glibc malloc"));
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-allocator-{Guid.NewGuid():N}.so");
        (code, _, stderr) = Launch(["info"], new() { ["MAMBAAD_ALLOCATOR"] = missing });
        Assert.Equal(2, code);
        Assert.Contains($"MAMBAAD_ALLOCATOR={missing} is not a file", stderr);
    }

    /// <summary>Runs <c>bash ./mambaad args</c> from the clone (it builds the CLI when needed, then execs it); null unsets a variable.</summary>
    private static (int Code, string[] Stdout, string Stderr) Launch(string[] args, Dictionary<string, string?> environment)
    {
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(RepoRoot.Path, "mambaad"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("LD_PRELOAD");
        foreach (var (k, v) in environment)
            if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(entireProcessTree: true); Assert.Fail("./mambaad info did not finish in 5 minutes"); }
        return (p.ExitCode, stdout.Split('\n'), stderr.Result);
    }
}
