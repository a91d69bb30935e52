using System.Net;
using System.Net.Sockets;
using MambaAD.Server;

namespace MambaAD.Tests.Serving;

/// <summary>Bad option values are refused before the server starts, with one line naming the option; the CLI prints it and exits 2.</summary>
public class ServerOptionsTests
{
    public static TheoryData<string, ServerOptions> Bad => new()
    {
        { "--max-request-bytes -1", new ServerOptions(MaxRequestBytes: -1) },
        { "--max-request-bytes 0", new ServerOptions(MaxRequestBytes: 0) },
        { "--urls 'garbage'", new ServerOptions(Urls: ["garbage"]) },
        { "--urls 'http://127.0.0.1'", new ServerOptions(Urls: ["http://127.0.0.1"]) },
        { "--urls 'http://127.0.0.1:99999'", new ServerOptions(Urls: ["http://127.0.0.1:99999"]) },
        { "--urls 'https://127.0.0.1:5080': the server speaks plain HTTP", new ServerOptions(Urls: ["https://127.0.0.1:5080"]) },
        { "not 'myhost'", new ServerOptions(Urls: ["http://myhost:5080"]) },
        { "--urls is empty", new ServerOptions(Urls: []) },
        { "--timeout 0", new ServerOptions(RequestTimeout: TimeSpan.Zero) },
        { "--timeout -1", new ServerOptions(RequestTimeout: TimeSpan.FromSeconds(-1)) },
        { "--threshold NaN", new ServerOptions(ImageThreshold: double.NaN) },
        { "--threshold Infinity", new ServerOptions(ImageThreshold: double.PositiveInfinity) },
        { "--concurrency 0", new ServerOptions(MaxConcurrentRequests: 0) },
        { "--queue -1", new ServerOptions(QueueLimit: -1) },
        { "--max-image-side 0", new ServerOptions(MaxImageSide: 0) },
        { "--min-upload-rate -5", new ServerOptions(MinUploadBytesPerSecond: -5) },
        { "--min-upload-rate NaN", new ServerOptions(MinUploadBytesPerSecond: double.NaN) },
        { "--allowed-hosts 'http://x'", new ServerOptions(AllowedHosts: ["http://x"]) },
        { "--allowed-hosts 'localhost:5080'", new ServerOptions(AllowedHosts: ["localhost:5080"]) },
        { "--allowed-hosts is empty", new ServerOptions(AllowedHosts: []) },
        { "max batch images 0", new ServerOptions(MaxBatchImages: 0) },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void A_bad_value_is_one_line_naming_the_option(string named, ServerOptions options)
    {
        var e = Assert.Throws<MambaADException>(() => options.Validate());
        Assert.Contains(named, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5080")]
    [InlineData("http://localhost:0")]
    [InlineData("http://*:8080")]
    [InlineData("http://+:8080")]
    [InlineData("http://0.0.0.0:8080/")]
    [InlineData("http://[::1]:5080")]
    [InlineData("http://[::]:5080")]
    public void Good_addresses_pass(string url) => new ServerOptions(Urls: [url]).Validate();

    [Fact]
    public void The_defaults_pass_and_allow_only_loopback_names()
    {
        var o = new ServerOptions().Validate();
        Assert.Equal(["localhost", "127.0.0.1", "[::1]"], o.Hosts);
        new ServerOptions(AllowedHosts: ["*"]).Validate();
        new ServerOptions(AllowedHosts: ["*.example.com", "api.example.org", "10.0.0.1", "[fe80::1]"]).Validate();
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(1e300)]
    public void Timeout_seconds_are_checked_before_they_become_a_TimeSpan(double seconds) =>
        Assert.Contains("--timeout", Assert.Throws<MambaADException>(() => ServerOptions.TimeoutFromSeconds(seconds)).Message);

    [Theory]
    [InlineData("--max-request-bytes", "-1")]
    [InlineData("--urls", "garbage")]
    [InlineData("--timeout", "0")]
    [InlineData("--timeout", "-1")]
    [InlineData("--threshold", "NaN")]
    [InlineData("--concurrency", "0")]
    [InlineData("--queue", "-1")]
    [InlineData("--max-image-side", "0")]
    [InlineData("--allowed-hosts", "http://evil")]
    public async Task The_cli_refuses_it_at_start_up_with_one_line_and_exit_2(string option, string value)
    {
        // Validation runs before the checkpoint is read: a missing checkpoint shows it is first.
        string[] urls = option == "--urls" ? [] : ["--urls", "http://127.0.0.1:0"];
        using var p = ServeProcess.Start(["serve", "--checkpoint", "/nonexistent/ckpt", .. urls, option, value]);
        Assert.Equal(2, await p.ExitCodeAsync(TimeSpan.FromMinutes(2)));
        var line = Assert.Single(p.Stderr);
        Assert.StartsWith($"error: {option}", line);
        Assert.DoesNotContain(p.Stdout, l => l.Contains("listening"));
    }

    [Fact]
    public async Task A_port_in_use_or_a_bad_checkpoint_is_one_line_and_exit_2()
    {
        var dir = Directory.CreateTempSubdirectory("mambaad-options").FullName;
        try
        {
            ServerFixture.SaveTinyCheckpoint(Path.Combine(dir, "ckpt"));
            using var taken = new TcpListener(IPAddress.Loopback, 0);
            taken.Start();
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            using (var p = ServeProcess.Start(["serve", "--checkpoint", Path.Combine(dir, "ckpt"), "--urls", $"http://127.0.0.1:{port}"]))
            {
                Assert.Equal(2, await p.ExitCodeAsync(TimeSpan.FromMinutes(2)));
                Assert.StartsWith("error: --urls: cannot listen", Assert.Single(p.Stderr));
            }
            File.WriteAllText(Path.Combine(dir, "ckpt", "model.pth"), "not a checkpoint");
            using (var p = ServeProcess.Start(["serve", "--checkpoint", Path.Combine(dir, "ckpt"), "--urls", "http://127.0.0.1:0"]))
            {
                Assert.Equal(2, await p.ExitCodeAsync(TimeSpan.FromMinutes(2)));
                Assert.StartsWith("error: ", Assert.Single(p.Stderr));
                Assert.DoesNotContain(p.Stdout, l => l.Contains("serving on"));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
