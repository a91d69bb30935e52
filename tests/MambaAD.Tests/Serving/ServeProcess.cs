using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace MambaAD.Tests.Serving;

/// <summary>
/// A real <c>mambaad</c> process (the CLI built beside the tests, run as <c>dotnet MambaAD.Cli.dll …</c> — what the
/// <c>./mambaad</c> wrapper execs), for what only a process shows: signals, exit codes, start-up errors, crashes,
/// RSS. Output is collected as it comes; disposing kills the process (by its pid) if it is still running.
/// </summary>
public sealed partial class ServeProcess : IDisposable
{
    public const int SIGINT = 2, SIGKILL = 9, SIGTERM = 15;

    private readonly Process _process;
    private readonly List<string> _stdout = [], _stderr = [];
    private readonly TaskCompletionSource<string> _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServeProcess(Process process) => _process = process;

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public IReadOnlyList<string> Stdout { get { lock (_stdout) return [.. _stdout]; } }
    public IReadOnlyList<string> Stderr { get { lock (_stderr) return [.. _stderr]; } }

    /// <summary>The CLI's entry assembly beside the test assembly (the test project references the CLI project).</summary>
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "MambaAD.Cli.dll");

    /// <summary>
    /// Starts <c>dotnet <paramref name="dll"/> <paramref name="args"/></c> (the CLI beside the tests by default), with
    /// HOME at <paramref name="home"/> if given, and as user <paramref name="uid"/> if given (through setpriv, when
    /// the tests run as root: root would write where the user could not), with <paramref name="environment"/> added.
    /// </summary>
    public static ServeProcess Start(IEnumerable<string> args, string? dll = null, string? home = null, int? uid = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        bool drop = uid is not null && Environment.UserName == "root" && File.Exists("/usr/bin/setpriv");
        var psi = new ProcessStartInfo(drop ? "/usr/bin/setpriv" : DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        if (drop)
            foreach (var a in new[] { $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", DotnetHost() }) psi.ArgumentList.Add(a);
        if (home is not null) psi.Environment["HOME"] = home;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        psi.ArgumentList.Add(dll ?? CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = new ServeProcess(Process.Start(psi)!);
        p._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { p._serving.TrySetException(new InvalidOperationException("the process ended before serving")); return; }
            lock (p._stdout) p._stdout.Add(e.Data);
            if (e.Data.StartsWith("listening on")) p._listening.TrySetResult();
            if (e.Data.Contains("serving on") && Address().Match(e.Data) is { Success: true } m) p._serving.TrySetResult(m.Value);
        };
        p._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (p._stderr) p._stderr.Add(e.Data); };
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Starts <c>serve</c> on a free loopback port and waits until it says it serves (model loaded and warmed up).</summary>
    public static Task<(ServeProcess Process, Uri Url)> ServeAsync(string checkpoint, params string[] options) =>
        ServeAsync(["serve", "--checkpoint", checkpoint, "--urls", "http://127.0.0.1:0", .. options]);

    /// <summary>Starts the CLI with <paramref name="args"/> (a serve command) and waits until it says it serves.</summary>
    public static async Task<(ServeProcess Process, Uri Url)> ServeAsync(IReadOnlyList<string> args, string? dll = null, string? home = null, int? uid = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var p = Start(args, dll, home, uid, environment);
        try
        {
            var url = await p._serving.Task.WaitAsync(TimeSpan.FromMinutes(3));
            return (p, new Uri(url));
        }
        catch (Exception e)
        {
            p.Dispose();
            throw new InvalidOperationException($"serve did not start: {e.Message}; stderr: {string.Join(" | ", p.Stderr)}", e);
        }
    }

    /// <summary>Completes when the server listens (before its model is loaded).</summary>
    public Task Listening => _listening.Task;

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : "dotnet";

    [GeneratedRegex(@"http://[^\s,;)]+")]
    private static partial Regex Address();

    /// <summary>Sends a signal to this process alone (by its pid).</summary>
    public void Signal(int signal) => Assert.Equal(0, Kill(_process.Id, signal));

    /// <summary>Waits for the exit (bounded) and returns the exit code; stdout and stderr are complete afterwards.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan limit)
    {
        await _process.WaitForExitAsync().WaitAsync(limit);
        _process.WaitForExit(); // flushes the redirected streams
        return _process.ExitCode;
    }

    /// <summary>Current and peak resident memory, in MB, from /proc.</summary>
    public (double Rss, double Peak) MemoryMb()
    {
        double rss = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:")) rss = Kb(line) / 1024.0;
            if (line.StartsWith("VmHWM:")) peak = Kb(line) / 1024.0;
        }
        return (rss, peak);

        static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill(_process.Id, SIGKILL);
            _process.WaitForExit(TimeSpan.FromSeconds(30));
        }
        _process.Dispose();
    }
}
