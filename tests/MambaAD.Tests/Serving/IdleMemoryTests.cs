using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using MambaAD.Tests.Util;
using Xunit.Abstractions;

namespace MambaAD.Tests.Serving;

/// <summary>
/// The server's promise after a burst (README, "Serving", memory): two seconds after the last request it returns the
/// free memory to the system. Checked where that is hardest: under jemalloc preloaded with the <c>./mambaad</c>
/// launcher's own settings, which keep every freed page for reuse (so glibc's <c>malloc_trim</c> alone would find
/// nothing), with a burst of large images whose decoded pixels are native memory.
/// </summary>
public sealed class IdleMemoryTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mambaad-idle-memory").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>The launcher's default <c>MALLOC_CONF</c>, read from the script itself.</summary>
    private static string LauncherMallocConf() =>
        Regex.Match(File.ReadAllText(Path.Combine(RepoRoot.Path, "mambaad")), @"MALLOC_CONF:-([^}]+)\}") is { Success: true } m
            ? m.Groups[1].Value : throw new InvalidOperationException("the launcher sets no default MALLOC_CONF");

    [JemallocFact]
    public async Task After_a_burst_of_large_images_the_server_returns_jemallocs_kept_pages()
    {
        ServerFixture.SaveTinyCheckpoint(Path.Combine(_dir, "ckpt"));
        var environment = new Dictionary<string, string> { ["LD_PRELOAD"] = JemallocFactAttribute.Library!, ["MALLOC_CONF"] = LauncherMallocConf() };
        var (server, url) = await ServeProcess.ServeAsync(["serve", "--checkpoint", Path.Combine(_dir, "ckpt"), "--urls", "http://127.0.0.1:0",
            "--concurrency", "2"], environment: environment);
        using (server)
        {
            using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(2) };
            Assert.Equal(200, await Send(http, ServerFixture.Picture(96, 72)));
            await Task.Delay(TimeSpan.FromSeconds(4));   // the warm-up's own trim
            var (before, _) = server.MemoryMb();

            // 4000² pixels: each decodes into 61 MB of native RGBA (freed at once, kept by jemalloc) beside its managed RGB.
            var large = ServerFixture.Picture(4000, 4000);
            await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
            {
                for (int i = 0; i < 4; i++) Assert.Equal(200, await Send(http, large));
            })));
            var (after, peak) = server.MemoryMb();

            // Idle: the trimmer runs two seconds after the last request, at most every ten seconds.
            double idle = after;
            for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(20); DateTime.UtcNow < until && idle > before + 48;)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
                idle = server.MemoryMb().Rss;
            }
            output.WriteLine($"RSS {before:F0} MB before the burst, {after:F0} MB after it (peak {peak:F0} MB), {idle:F0} MB idle");
            Assert.True(peak - before > 100, $"the burst should have raised RSS by more than 100 MB: {before:F0} → peak {peak:F0} MB");
            Assert.True(idle <= before + 48, $"RSS {before:F0} MB before the burst, {after:F0} MB after it, still {idle:F0} MB after 20 s idle");
        }
    }

    private static async Task<int> Send(HttpClient http, byte[] png)
    {
        using var content = new ByteArrayContent(png);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        using var r = await http.PostAsync("/predict", content);
        await r.Content.ReadAsByteArrayAsync();
        return (int)r.StatusCode;
    }
}
