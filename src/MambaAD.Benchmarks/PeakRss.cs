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
    public static double Megabytes() => Status("VmHWM:");

    /// <summary>The current resident memory (VmRSS) in MB, NaN where /proc is absent.</summary>
    public static double CurrentMegabytes() => Status("VmRSS:");

    private static double Status(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return double.NaN;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field));
        return line is null ? double.NaN : double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
    }
}
