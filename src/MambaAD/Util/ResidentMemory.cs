using System.Globalization;

namespace MambaAD.Util;

/// <summary>This process's resident memory as the kernel counts it (Linux /proc/self/status), for a run's log and the
/// benchmarks; NaN where /proc is absent.</summary>
internal static class ResidentMemory
{
    /// <summary>The current resident memory (VmRSS) in MB.</summary>
    public static double CurrentMegabytes() => Status("VmRSS:");

    /// <summary>The peak resident memory so far (VmHWM) in MB.</summary>
    public static double PeakMegabytes() => Status("VmHWM:");

    private static double Status(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return double.NaN;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field));
        return line is null ? double.NaN
            : double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
