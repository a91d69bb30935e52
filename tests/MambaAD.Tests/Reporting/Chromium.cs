using System.Diagnostics;

namespace MambaAD.Tests.Reporting;

/// <summary>
/// Headless Debian chromium for checking that pages render. <c>.ci/run</c> installs it; locally, tests that need it
/// are skipped with a reason when it is absent (<see cref="ChromiumFactAttribute"/>).
/// </summary>
internal static class Chromium
{
    public static readonly string? Path = Locate();

    private static string? Locate()
    {
        if (Environment.GetEnvironmentVariable("MAMBAAD_CHROMIUM") is { Length: > 0 } env && File.Exists(env)) return env;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in new[] { "chromium", "chromium-browser" })
                if (File.Exists(System.IO.Path.Combine(dir, name))) return System.IO.Path.Combine(dir, name);
        return null;
    }

    /// <summary>Runs chromium headless on <paramref name="page"/> with extra arguments; returns stdout. Stops it after two minutes.</summary>
    public static string Run(string page, params string[] args)
    {
        var profile = Directory.CreateTempSubdirectory("mambaad-chromium").FullName;
        try
        {
            var psi = new ProcessStartInfo(Path ?? throw new InvalidOperationException("chromium not found"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                         $"--user-data-dir={profile}" }.Concat(args).Append(new Uri(page).AbsoluteUri))
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"chromium did not finish on {page}: {stderr.Result}");
            }
            if (p.ExitCode != 0) throw new InvalidOperationException($"chromium exited with {p.ExitCode}: {stderr.Result}");
            return stdout.Result;
        }
        finally
        {
            try { Directory.Delete(profile, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

/// <summary>A fact that needs headless chromium; skipped with the reason when it is not installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.Path is null)
            Skip = "chromium not installed (apt-get install chromium; .ci/run installs it) — set MAMBAAD_CHROMIUM to use another binary";
    }
}
