using MambaAD.Util;

namespace MambaAD.Benchmarks;

/// <summary>The process's peak resident memory (Linux VmHWM), resettable so that a phase can be measured alone.</summary>
public static class PeakRss
{
    /// <summary>Writing 5 to clear_refs resets the peak to the current RSS (where allowed; else the peak stays).</summary>
    public static void Reset()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>VmHWM in MB, NaN where /proc is absent.</summary>
    public static double Megabytes() => ResidentMemory.PeakMegabytes();

    /// <summary>The current resident memory (VmRSS) in MB, NaN where /proc is absent.</summary>
    public static double CurrentMegabytes() => ResidentMemory.CurrentMegabytes();

    /// <summary>
    /// The process's minor page faults so far (Linux /proc/self/stat field 10), NaN where /proc is absent. With huge
    /// pages one fault maps 2 MB, so the count is a lower bound on the memory faulted in.
    /// </summary>
    public static double MinorFaults()
    {
        const string stat = "/proc/self/stat";
        if (!File.Exists(stat)) return double.NaN;
        var text = File.ReadAllText(stat);
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');   // after "pid (comm) ": field 3 is fields[0]
        return double.Parse(fields[10 - 3], System.Globalization.CultureInfo.InvariantCulture);
    }
}
