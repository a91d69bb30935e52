using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace MambaAD.Tests.Serving;

/// <summary>
/// <c>mambaad serve</c> as a real process: SIGTERM (what Kubernetes and docker send) and SIGINT (Ctrl+C) stop it with
/// exit code 0 after draining: a request already admitted is answered in full, even when it completes seconds after
/// the signal, and the model is freed only then.
/// </summary>
public class ShutdownTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mambaad-shutdown").FullName;
    private string Checkpoint => Path.Combine(_dir, "ckpt");

    public ShutdownTests() => ServerFixture.SaveTinyCheckpoint(Checkpoint);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static async Task<bool> Accepts(Uri url)
    {
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(url.Host, url.Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [Theory]
    [InlineData(ServeProcess.SIGTERM)]
    [InlineData(ServeProcess.SIGINT)]
    public async Task A_signal_drains_the_request_in_progress_then_exits_0(int signal)
    {
        var (p, url) = await ServeProcess.ServeAsync(Checkpoint, "--timeout", "120");
        using (p)
        {
            // A request in progress: its head and half its body sent.
            var png = ServerFixture.Picture(64, 64, seed: 9);
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(url.Host, url.Port);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {png.Length}\r\n\r\n"));
            await stream.WriteAsync(png.AsMemory(0, png.Length / 2));
            using var http = new HttpClient { BaseAddress = url };
            using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
                while (!(await http.GetStringAsync("/metrics", limit.Token)).Contains("\nmambaad_requests_receiving 1"))
                    await Task.Delay(20, limit.Token);

            p.Signal(signal);
            // Stopping: no new connection is accepted …
            using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
                while (await Accepts(url))
                    await Task.Delay(20, limit.Token);
            // … and seconds later the request in progress still completes and is answered in full.
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.False(p.HasExited, "the process exited before the request in progress was answered");
            await stream.WriteAsync(png.AsMemory(png.Length / 2));
            var text = await ServerFixture.ReadAnswerAsync(stream, TimeSpan.FromMinutes(1));
            Assert.StartsWith("HTTP/1.1 200", text);
            var json = JsonDocument.Parse(text[(text.IndexOf("\r\n\r\n") + 4)..]).RootElement;
            Assert.True(json.GetProperty("score").GetDouble() >= 0);

            Assert.Equal(0, await p.ExitCodeAsync(TimeSpan.FromMinutes(1)));
            Assert.Empty(p.Stderr);
        }
    }

    [Fact]
    public async Task An_idle_server_stops_at_once_on_either_signal()
    {
        foreach (var signal in new[] { ServeProcess.SIGINT, ServeProcess.SIGTERM })
        {
            var (p, _) = await ServeProcess.ServeAsync(Checkpoint);
            using (p)
            {
                p.Signal(signal);
                Assert.Equal(0, await p.ExitCodeAsync(TimeSpan.FromMinutes(1)));
                Assert.Empty(p.Stderr);
            }
        }
    }

    [Fact]
    public async Task A_signal_while_the_model_loads_stops_at_once()
    {
        using var p = ServeProcess.Start(["serve", "--checkpoint", Checkpoint, "--urls", "http://127.0.0.1:0"]);
        await p.Listening.WaitAsync(TimeSpan.FromMinutes(2));
        p.Signal(ServeProcess.SIGTERM);
        Assert.Equal(0, await p.ExitCodeAsync(TimeSpan.FromMinutes(1)));
        Assert.Empty(p.Stderr);
    }
}
