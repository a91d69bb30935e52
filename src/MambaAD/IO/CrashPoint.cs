using System.Runtime.InteropServices;

namespace MambaAD.IO;

/// <summary>
/// A test seam for crash safety, off unless the environment asks: with <c>MAMBAAD_TEST_CRASH_AT=point</c> (or
/// <c>point#n</c>) the process kills itself with SIGKILL the first (or n-th) time it reaches the named point — a
/// <c>kill -9</c> at an exact step of a save, which no timing could hit reliably; with <c>MAMBAAD_TEST_PAUSE_AT</c> it
/// prints "paused at POINT" to stderr and waits there until it is killed, so that a test can send a signal at that
/// moment. Points are named "FOLDER:STEP", e.g. "last:staged" (see <see cref="AtomicFolder"/>).
/// </summary>
internal static partial class CrashPoint
{
    private static readonly (string Point, int Count)? Crash = Parse(Environment.GetEnvironmentVariable("MAMBAAD_TEST_CRASH_AT"));
    private static readonly (string Point, int Count)? Pause = Parse(Environment.GetEnvironmentVariable("MAMBAAD_TEST_PAUSE_AT"));
    private static readonly Dictionary<string, int> Hits = [];

    /// <summary>Marks a point of a multi-step operation.</summary>
    public static void Reached(string point)
    {
        if (Crash is null && Pause is null) return;
        int hit;
        lock (Hits) Hits[point] = hit = Hits.GetValueOrDefault(point) + 1;
        if (Crash is { } c && c.Point == point && c.Count == hit)
        {
            Console.Out.Flush();
            if (OperatingSystem.IsWindows()) Environment.FailFast($"crash point {point}");
            Kill(Environment.ProcessId, 9);
        }
        if (Pause is { } p && p.Point == point && p.Count == hit)
        {
            Console.Error.WriteLine($"paused at {point}");
            Thread.Sleep(Timeout.Infinite);
        }
    }

    private static (string, int)? Parse(string? spec)
    {
        if (string.IsNullOrWhiteSpace(spec)) return null;
        var parts = spec.Split('#');
        return (parts[0], parts.Length > 1 && int.TryParse(parts[1], out var n) && n > 0 ? n : 1);
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
