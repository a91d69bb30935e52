using System.Diagnostics;

namespace MambaAD.Tests.Util;

/// <summary>
/// The <c>./mambaad</c> launcher builds the CLI only when something the build reads changed since it last built (README,
/// "Commands"): the real script, in a scratch tree of its own with a fake <c>dotnet</c> first on PATH that logs each
/// call, so that nothing here rebuilds the clone the other tests run from.
/// </summary>
public sealed class LauncherBuildTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("mambaad-launcher-").FullName;
    private string Log => Path.Combine(_root, "dotnet-calls.log");
    private string Source => Path.Combine(_root, "src", "MambaAD", "Model.cs");

    public LauncherBuildTests()
    {
        File.Copy(Path.Combine(RepoRoot.Path, "mambaad"), Path.Combine(_root, "mambaad"));
        Directory.CreateDirectory(Path.GetDirectoryName(Source)!);
        File.WriteAllText(Source, "// a source file");
        var output = Path.Combine(_root, "src", "MambaAD.Cli", "bin", "Release", "net10.0", "linux-x64");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "MambaAD.Cli.dll"), "");
        Directory.CreateDirectory(Path.Combine(_root, "build"));
        var fake = Path.Combine(_root, "fake-bin", "dotnet");
        Directory.CreateDirectory(Path.GetDirectoryName(fake)!);
        // `dotnet build …` logs "build" and fails when the file "fail" exists; `dotnet X.dll args` logs "run args".
        File.WriteAllText(fake, $$"""
            #!/usr/bin/env bash
            if [[ "$1" == build ]]; then
              echo build >> '{{Log}}'
              if [[ -f '{{_root}}/fail' ]]; then echo "error CS1002: ; expected"; exit 1; fi
              exit 0
            fi
            shift; echo "run $*" >> '{{Log}}'
            """);
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [LinuxFact]
    public void Builds_once_then_only_when_a_source_changes()
    {
        Assert.Equal(["build", "run --version"], Launch("--version"));        // no stamp yet
        Assert.Equal(["run --version"], Launch("--version"));                 // nothing changed: no build
        Touch(Source);
        Assert.Equal(["build", "run info"], Launch("info"));                  // a source file changed
        Assert.Equal(["run info"], Launch("info"));
        var objFile = Path.Combine(_root, "src", "MambaAD", "obj", "project.assets.json");
        Directory.CreateDirectory(Path.GetDirectoryName(objFile)!);
        Touch(objFile);                                                       // the build's own output does not count
        Assert.Equal(["run info"], Launch("info"));
        Touch(Path.Combine(_root, "Directory.Build.props"));                  // a top-level build file counts
        Assert.Equal(["build", "run info"], Launch("info"));
        Assert.Equal(["build", "run info"], Launch("info", build: "always"));
    }

    [LinuxFact]
    public void A_failed_build_says_so_runs_nothing_and_is_tried_again()
    {
        Assert.Equal(["build", "run info"], Launch("info"));
        Touch(Source);
        File.WriteAllText(Path.Combine(_root, "fail"), "");
        var (code, calls, stderr) = Run("info");
        Assert.Equal(1, code);
        Assert.Equal(["build"], calls);
        Assert.Contains("error CS1002", stderr);
        Assert.Contains("mambaad: the build failed (above)", stderr);
        File.Delete(Path.Combine(_root, "fail"));
        Assert.Equal(["build", "run info"], Launch("info"));                  // the failed build left no stamp behind
        Assert.Equal(["run info"], Launch("info"));
    }

    [GitFact]
    public void Another_commit_is_a_build_so_that_version_names_it()
    {
        Assert.True(Git("init", "-q") && Git("add", "-A") && Git("commit", "-q", "-m", "one"), "git could not make a scratch repository");
        Assert.Equal(["build", "run --version"], Launch("--version"));
        Assert.Equal(["run --version"], Launch("--version"));
        Assert.True(Git("commit", "-q", "--allow-empty", "-m", "two"));
        Assert.Equal(["build", "run --version"], Launch("--version"));
    }

    /// <summary>Modified now: after the last launch's build started (the stamp's time), before the next one's.</summary>
    private static void Touch(string path)
    {
        if (!File.Exists(path)) File.WriteAllText(path, "");
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
    }

    private string[] Launch(string args, string? build = null)
    {
        var (code, calls, stderr) = Run(args, build);
        Assert.True(code == 0, stderr);
        return calls;
    }

    /// <summary>Runs the scratch tree's launcher; returns its exit code, the fake dotnet's calls (the log then cleared) and stderr.</summary>
    private (int Code, string[] Calls, string Stderr) Run(string args, string? build = null)
    {
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(_root, "mambaad"));
        psi.ArgumentList.Add(args);
        psi.Environment["PATH"] = Path.Combine(_root, "fake-bin") + ":" + Environment.GetEnvironmentVariable("PATH");
        psi.Environment["MAMBAAD_ALLOCATOR"] = "glibc";
        psi.Environment.Remove("LD_PRELOAD");
        if (build is null) psi.Environment.Remove("MAMBAAD_BUILD"); else psi.Environment["MAMBAAD_BUILD"] = build;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(1))) { p.Kill(entireProcessTree: true); Assert.Fail("the launcher did not finish in a minute"); }
        var calls = File.Exists(Log) ? File.ReadAllLines(Log) : [];
        File.Delete(Log);
        return (p.ExitCode, calls, stderr.Result);
    }

    private bool Git(params string[] args)
    {
        var psi = new ProcessStartInfo("git") { WorkingDirectory = _root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0;
    }
}

/// <summary>A Linux fact that needs git on PATH.</summary>
public sealed class GitFactAttribute : FactAttribute
{
    public GitFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "the launcher is a bash script: Linux only";
        else if (!(Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, "git"))))
            Skip = "git is not on PATH (apt install git)";
    }
}
