using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MambaAD.Tests.Reliability;

/// <summary>
/// The real <c>mambaad</c> as a child process (<c>dotnet MambaAD.Cli.dll …</c>, what the <c>./mambaad</c> wrapper
/// execs), for what only a process shows: signals, kills, exit codes, what reaches the terminal, resident memory.
/// Output is collected as it comes; the peak RSS is sampled from /proc while it runs; disposing kills it (by pid).
/// </summary>
public sealed partial class CliProcess : IDisposable
{
    public const int SIGINT = 2, SIGKILL = 9, SIGTERM = 15;

    private readonly Process _process;
    private readonly List<string> _stdout = [], _stderr = [];
    private readonly Thread _sampler;
    private long _peakRssKb;
    private volatile bool _done;

    private CliProcess(Process process)
    {
        _process = process;
        _sampler = new Thread(Sample) { IsBackground = true, Name = "rss sampler" };
        _sampler.Start();
    }

    public int Pid => _process.Id;
    public IReadOnlyList<string> Stdout { get { lock (_stdout) return [.. _stdout]; } }
    public IReadOnlyList<string> Stderr { get { lock (_stderr) return [.. _stderr]; } }

    /// <summary>The highest resident memory seen (sampled every few milliseconds, and VmHWM at each sample), in MB.</summary>
    public double PeakRssMb => Interlocked.Read(ref _peakRssKb) / 1024.0;

    /// <summary>The CLI's entry assembly beside the test assembly (the test project references the CLI project).</summary>
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "MambaAD.Cli.dll");

    /// <summary>
    /// Starts the CLI with <paramref name="args"/>. <paramref name="environment"/> adds variables (e.g. a crash point);
    /// <paramref name="fileSizeLimitKb"/> runs it under <c>ulimit -f</c> with SIGXFSZ ignored, so that a write past
    /// the limit fails as on a full disk.
    /// </summary>
    public static CliProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, long? fileSizeLimitKb = null)
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        if (fileSizeLimitKb is { } kb)
        {
            // An ignored signal stays ignored across exec: the write then fails with EFBIG instead of killing the process.
            psi.FileName = "/bin/bash";
            foreach (var a in new[] { "-c", $"trap '' XFSZ; ulimit -f {kb}; exec \"$0\" \"$@\"", DotnetHost() }) psi.ArgumentList.Add(a);
        }
        else psi.FileName = DotnetHost();
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["MAMBAAD_DEBUG"] = "0";
        // The runtime's W^X double mapping sizes a file at start-up, which a file-size limit would refuse.
        if (fileSizeLimitKb is not null) psi.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var p = new CliProcess(Process.Start(psi)!);
        p._process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (p._stdout) p._stdout.Add(e.Data); };
        p._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (p._stderr) p._stderr.Add(e.Data); };
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Runs the CLI to its end (bounded) and returns its exit code.</summary>
    public static (int Code, CliProcess Process) Run(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null,
        long? fileSizeLimitKb = null, TimeSpan? limit = null)
    {
        var p = Start(args, environment, fileSizeLimitKb);
        return (p.WaitForExit(limit ?? TimeSpan.FromMinutes(10)), p);
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : "dotnet";

    /// <summary>Whether the process ignores SIGINT (inherited from a shell that started the tests in the background).</summary>
    public bool IgnoresSigint()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            if (line.StartsWith("SigIgn:")) return (Convert.ToUInt64(line[7..].Trim(), 16) & (1UL << (SIGINT - 1))) != 0;
        return false;
    }

    /// <summary>Sends a signal to this process alone (by its pid).</summary>
    public void Signal(int signal) => Assert.Equal(0, Kill(_process.Id, signal));

    /// <summary>Waits until a line of stdout or stderr satisfies <paramref name="match"/> (or the process ends); true when one did.</summary>
    public bool WaitForLine(Func<string, bool> match, TimeSpan limit)
    {
        var end = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < end)
        {
            if (Stdout.Any(match) || Stderr.Any(match)) return true;
            if (_process.HasExited) { _process.WaitForExit(); return Stdout.Any(match) || Stderr.Any(match); }
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>Waits for the exit (bounded: failing the test when exceeded) and returns the exit code; output is complete afterwards.</summary>
    public int WaitForExit(TimeSpan limit)
    {
        if (!_process.WaitForExit(limit))
            throw new TimeoutException($"mambaad (pid {Pid}) did not end within {limit}; stderr: {string.Join(" | ", Stderr.TakeLast(5))}");
        _process.WaitForExit(); // flushes the redirected streams
        _done = true;
        return _process.ExitCode;
    }

    /// <summary>Whether the process ended by a signal rather than an exit (dotnet reports 128 + the signal then).</summary>
    public int ExitCode => _process.ExitCode;

    private void Sample()
    {
        while (!_done)
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
                    if (line.StartsWith("VmHWM:") || line.StartsWith("VmRSS:"))
                    {
                        long kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
                        long seen;
                        while (kb > (seen = Interlocked.Read(ref _peakRssKb)) && Interlocked.CompareExchange(ref _peakRssKb, kb, seen) != seen) { }
                    }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException) { }
            try { if (_process.HasExited) return; } catch (InvalidOperationException) { return; }
            Thread.Sleep(5);
        }
    }

    /// <summary>Everything the process wrote, for failure messages.</summary>
    public string Transcript() => $"stdout: {string.Join(" | ", Stdout.TakeLast(12))}\nstderr: {string.Join(" | ", Stderr.TakeLast(12))}";

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    public void Dispose()
    {
        _done = true;
        try
        {
            if (!_process.HasExited)
            {
                Kill(_process.Id, SIGKILL);
                _process.WaitForExit(TimeSpan.FromSeconds(30));
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
