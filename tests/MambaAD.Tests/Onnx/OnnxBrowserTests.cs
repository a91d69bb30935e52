using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using MambaAD.Demo;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Onnx;
using MambaAD.Tests.Reporting;
using Xunit.Abstractions;

namespace MambaAD.Tests.Onnx;

/// <summary>
/// The export in a browser: web/index.html runs it through onnxruntime-web (WebAssembly) in headless chromium on an
/// image, and its score equals ONNX Runtime's in .NET on the same pixels. The page and the model are served over
/// loopback HTTP (browsers refuse WebAssembly and canvas pixels from file:// pages).
/// </summary>
[Collection("Torch")]
public sealed class OnnxBrowserTests(ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("mambaad-onnx-web-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string? WebDir
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "MambaAD.slnx"))) return Path.Combine(d.FullName, "web");
            return null;
        }
    }

    [WebFact]
    public void BrowserScoreEqualsOnnxRuntimeOnTheSamePixels()
    {
        const int s = 64;
        using var model = OnnxTestModels.Small(seed: 6);
        var modelPath = OnnxTestModels.Export(model, dir);
        var rgb = new byte[s * s * 3];
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
                for (int c = 0; c < 3; c++)
                    rgb[(y * s + x) * 3 + c] = (byte)(((x / 8 + y / 8) % 2 == 0 ? 60 : 190) + 40 * Math.Sin(0.3 * x + c) + (x > 40 && y > 40 && x + y < 100 ? 60 : 0));
        File.WriteAllBytes(Path.Combine(dir, "image.png"), ImageEncoder.PngRgb(rgb, s, s));

        var input = new float[3 * s * s];
        InputNormalization.ImageNet.Normalize(rgb, s, s, input);
        float expected;
        using (var ort = OnnxRuntimeModel.Load(modelPath)) expected = ort.Run(input, 1).Scores[0];

        using var server = new StaticServer(WebDir!, dir);
        var dom = Chromium.Run($"{server.Url}index.html?model={Path.GetFileName(modelPath)}&image=image.png",
            "--virtual-time-budget=300000", "--dump-dom");
        var status = Regex.Match(dom, "<p id=\"status\">([^<]*)</p>").Groups[1].Value;
        Assert.True(dom.Contains("data-status=\"done\""), $"the page did not score the image: {status}");
        float actual = float.Parse(Regex.Match(dom, "data-score=\"([^\"]+)\"").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        output.WriteLine($"browser {actual:R}, .NET ONNX Runtime {expected:R}: |Δ| / score = {Math.Abs(actual - expected) / expected:E2} ({status})");
        Assert.True(Math.Abs(actual - expected) <= 1e-4 * expected, $"browser score {actual} ≠ ONNX Runtime's {expected}");
    }

    /// <summary>Serves <paramref name="web"/> and, for names not found there, <paramref name="files"/>, on a free loopback port.</summary>
    private sealed class StaticServer : IDisposable
    {
        private readonly HttpListener listener = new();
        private readonly string[] roots;

        public StaticServer(string web, string files)
        {
            roots = [web, files];
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            Url = $"http://127.0.0.1:{port}/";
            listener.Prefixes.Add(Url);
            listener.Start();
            _ = Task.Run(Serve);
        }

        public string Url { get; }

        private async Task Serve()
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await listener.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
                _ = Task.Run(() => Answer(context));
            }
        }

        private void Answer(HttpListenerContext context)
        {
            using var response = context.Response;
            var relative = Uri.UnescapeDataString(context.Request.Url!.AbsolutePath).TrimStart('/');
            var path = roots.Select(r => Path.GetFullPath(Path.Combine(r, relative)))
                .FirstOrDefault(p => roots.Any(r => p.StartsWith(Path.GetFullPath(r))) && File.Exists(p));
            if (path is null) { response.StatusCode = 404; return; }
            response.ContentType = Path.GetExtension(path) switch
            {
                ".html" => "text/html", ".js" or ".mjs" => "text/javascript", ".wasm" => "application/wasm",
                ".png" => "image/png", _ => "application/octet-stream",
            };
            try
            {
                using var file = File.OpenRead(path);
                response.ContentLength64 = file.Length;
                file.CopyTo(response.OutputStream);
            }
            catch (HttpListenerException) { } // the browser went away
        }

        public void Dispose() => listener.Close();
    }

    /// <summary>Needs chromium and web/node_modules (<c>npm ci --prefix web</c>); skipped with the reason otherwise.</summary>
    public sealed class WebFactAttribute : FactAttribute
    {
        public WebFactAttribute()
        {
            if (Chromium.Path is null) Skip = "chromium not installed (apt-get install chromium)";
            else if (WebDir is not { } web || !File.Exists(Path.Combine(web, "node_modules", "onnxruntime-web", "dist", "ort.wasm.min.js")))
                Skip = "web/node_modules has no onnxruntime-web: run npm ci --prefix web";
        }
    }
}
