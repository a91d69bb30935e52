using System.Text.Json;
using MambaAD.Server;

namespace MambaAD.Tests.Serving;

/// <summary>
/// DNS rebinding: a web page whose name resolves to 127.0.0.1 sends its own name as Host, and a cross-site form POST
/// carries its Origin. By default only the loopback names are answered; <c>--allowed-hosts</c> widens that.
/// </summary>
public class HostFilterTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    private static Task<(int Status, string Text)> Get(ServerFixture.Running server, string host, string? origin = null) =>
        server.RawAsync($"GET /model HTTP/1.1\r\nHost: {host}\r\n{(origin is null ? "" : $"Origin: {origin}\r\n")}Connection: close\r\n\r\n", []);

    private static string Error(string text) => JsonDocument.Parse(text[(text.IndexOf("\r\n\r\n") + 4)..]).RootElement.GetProperty("error").GetString()!;

    [Theory]
    [InlineData("localhost")]
    [InlineData("LocalHost:5080")]
    [InlineData("127.0.0.1:1234")]
    [InlineData("[::1]:5080")]
    public async Task Loopback_names_are_answered_by_default(string host) =>
        Assert.Equal(200, (await Get(f.Main, host)).Status);

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:5080")]
    [InlineData("localhost.evil.example")]
    [InlineData("192.168.1.10")]
    public async Task Other_hosts_get_421_json(string host)
    {
        var (status, text) = await Get(f.Main, host);
        Assert.Equal(421, status);
        Assert.Contains("--allowed-hosts", Error(text));
        Assert.DoesNotContain("\"classes\"", text);
    }

    [Fact]
    public async Task A_foreign_browser_origin_gets_403_even_with_a_loopback_host()
    {
        var (status, text) = await Get(f.Main, "127.0.0.1", "http://evil.example");
        Assert.Equal(403, status);
        Assert.Contains("origin 'http://evil.example'", Error(text));
        Assert.Equal(403, (await Get(f.Main, "localhost", "null")).Status);
        // A page served from the machine itself is fine.
        Assert.Equal(200, (await Get(f.Main, "localhost", "http://localhost:3000")).Status);
    }

    [Fact]
    public async Task Predict_is_refused_too_and_nothing_is_scored()
    {
        var png = ServerFixture.Picture(32, 32);
        var (status, _) = await f.Main.RawAsync($"POST /predict HTTP/1.1\r\nHost: evil.example\r\nContent-Type: image/png\r\nContent-Length: {png.Length}\r\nConnection: close\r\n\r\n", png);
        Assert.Equal(421, status);
    }

    [Fact]
    public async Task Allowed_hosts_star_answers_any_host_and_a_domain_pattern_its_subdomains()
    {
        await using (var any = await f.StartAsync(ServerFixture.Limits with { AllowedHosts = ["*"] }))
        {
            Assert.Equal(200, (await Get(any, "evil.example", "http://evil.example")).Status);
        }
        await using var domain = await f.StartAsync(ServerFixture.Limits with { AllowedHosts = ["*.example.com", "localhost"] });
        Assert.Equal(200, (await Get(domain, "api.example.com:8080")).Status);
        Assert.Equal(200, (await Get(domain, "localhost")).Status);
        Assert.Equal(421, (await Get(domain, "example.org")).Status);
        Assert.Equal(421, (await Get(domain, "127.0.0.1")).Status);
    }
}
