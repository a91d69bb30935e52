using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using MambaAD.Encoders;
using MambaAD.Imaging;
using MambaAD.Inference;
using MambaAD.Server;
using SkiaSharp;

namespace MambaAD.Tests.Serving;

/// <summary>Every endpoint and every refusal of the inference server, over real HTTP on loopback.</summary>
public class InferenceServerTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    private static ByteArrayContent Body(byte[] bytes, string? type = "image/png")
    {
        var c = new ByteArrayContent(bytes);
        if (type is not null) c.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        return c;
    }

    private static MultipartFormDataContent Multipart(params (string Name, byte[] Bytes)[] files)
    {
        var m = new MultipartFormDataContent();
        foreach (var (name, bytes) in files) m.Add(Body(bytes), "image", name);
        return m;
    }

    private static async Task<JsonElement> Json(HttpResponseMessage r, HttpStatusCode expected)
    {
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(expected == r.StatusCode, $"expected {(int)expected}, got {(int)r.StatusCode}: {text}");
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<string> Error(HttpResponseMessage r, HttpStatusCode expected) =>
        (await Json(r, expected)).GetProperty("error").GetString()!;

    [Fact]
    public async Task Health_is_ready_and_live()
    {
        var j = await Json(await f.Client.GetAsync("/health"), HttpStatusCode.OK);
        Assert.Equal("ready", j.GetProperty("status").GetString());
        j = await Json(await f.Client.GetAsync("/health/live"), HttpStatusCode.OK);
        Assert.Equal("alive", j.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Model_describes_configuration_classes_thresholds_version_and_limits()
    {
        var j = await Json(await f.Client.GetAsync("/model"), HttpStatusCode.OK);
        Assert.Equal(InferenceServer.Version, j.GetProperty("version").GetString());
        Assert.Equal(["a", "b"], j.GetProperty("classes").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(0.5, j.GetProperty("thresholds").GetProperty("image").GetDouble());
        Assert.Equal(0.25, j.GetProperty("thresholds").GetProperty("pixel").GetDouble());
        Assert.Equal(64, j.GetProperty("image_size").GetInt32());
        Assert.Equal("resnet18", j.GetProperty("config").GetProperty("backbone").GetString());
        Assert.Equal(300, j.GetProperty("limits").GetProperty("max_image_side").GetInt32());
        Assert.False(j.TryGetProperty("training", out _));
    }

    [Fact]
    public async Task Model_shows_no_file_system_path()
    {
        // A model trained with --encoder-weights FILE records the file's absolute path.
        var dir = Directory.CreateTempSubdirectory("mambaad-paths").FullName;
        try
        {
            ServerFixture.SaveTinyCheckpoint(Path.Combine(dir, "ckpt"), encoderWeights: $"file {dir}/weights dir/resnet34.pth (ignored fc.*, layer4.*)");
            await using var server = await ServerFixture.StartAsync(_ => Predictor.Load(Path.Combine(dir, "ckpt")), ServerFixture.Limits, hooks: null, waitReady: true, ownsPredictor: true);
            var text = await server.Client.GetStringAsync("/model");
            Assert.Equal("file resnet34.pth (ignored fc.*, layer4.*)", JsonDocument.Parse(text).RootElement.GetProperty("encoder_weights").GetString());
            Assert.DoesNotContain(dir, text);
            Assert.DoesNotContain("weights dir", text);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("file /a/b c/w.pth (ignored fc.*)", "file w.pth (ignored fc.*)")]
    [InlineData(@"file C:\models\w.safetensors", "file w.safetensors")]
    [InlineData("embedded ImageNet ResNet18 (Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1)", "embedded ImageNet ResNet18 (Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1)")]
    [InlineData("file ~/models/x.pth", "file x.pth")]
    public void Paths_in_model_strings_become_file_names(string recorded, string shown) =>
        Assert.Equal(shown, InferenceServer.HidePaths(recorded));

    [Fact]
    public async Task Predict_raw_png_gives_score_threshold_decision_and_size()
    {
        var png = ServerFixture.Picture(80, 60);
        var j = await Json(await f.Client.PostAsync("/predict", Body(png)), HttpStatusCode.OK);
        double score = j.GetProperty("score").GetDouble();
        var expected = f.Predictor.Predict([ImageDecoder.DecodeRgb(png, "x")])[0];
        Assert.Equal(expected.Score, score, 6);
        Assert.Equal(0.5, j.GetProperty("threshold").GetDouble());
        Assert.Equal(score > 0.5, j.GetProperty("is_anomalous").GetBoolean());
        Assert.Equal(80, j.GetProperty("width").GetInt32());
        Assert.Equal(60, j.GetProperty("height").GetInt32());
        Assert.False(j.TryGetProperty("heatmap", out _));
    }

    [Fact]
    public async Task Predict_multipart_jpeg_with_heatmap_returns_a_png_overlay_of_the_image_size()
    {
        var jpeg = ServerFixture.Picture(96, 72, SKEncodedImageFormat.Jpeg);
        var j = await Json(await f.Client.PostAsync("/predict?heatmap=true", Multipart(("part.jpg", jpeg))), HttpStatusCode.OK);
        var png = Convert.FromBase64String(j.GetProperty("heatmap").GetString()!);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        var overlay = ImageDecoder.DecodeRgb(png, "heatmap");
        Assert.Equal((96, 72), (overlay.Width, overlay.Height));
        Assert.Equal("part.jpg", j.GetProperty("name").GetString());
    }

    [Fact]
    public async Task Batch_predicts_each_part_in_order_like_single_requests()
    {
        var pictures = Enumerable.Range(0, 3).Select(i => ServerFixture.Picture(64 + 8 * i, 64, seed: i)).ToArray();
        var j = await Json(await f.Client.PostAsync("/predict/batch", Multipart(pictures.Select((p, i) => ($"img{i}.png", p)).ToArray())), HttpStatusCode.OK);
        var results = j.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(3, results.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal($"img{i}.png", results[i].GetProperty("name").GetString());
            Assert.Equal(64 + 8 * i, results[i].GetProperty("width").GetInt32());
            var single = await Json(await f.Client.PostAsync("/predict", Body(pictures[i])), HttpStatusCode.OK);
            Assert.Equal(single.GetProperty("score").GetDouble(), results[i].GetProperty("score").GetDouble(), 5);
        }
    }

    [Fact]
    public async Task Concurrent_requests_share_the_model_and_agree()
    {
        var png = ServerFixture.Picture(64, 64, seed: 7);
        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
            (await Json(await f.Client.PostAsync("/predict", Body(png)), HttpStatusCode.OK)).GetProperty("score").GetDouble()));
        Assert.All(answers, a => Assert.Equal(answers[0], a, 9));
    }

    [Fact]
    public async Task Empty_body_is_400()
    {
        Assert.Contains("empty body", await Error(await f.Client.PostAsync("/predict", Body([])), HttpStatusCode.BadRequest));
        Assert.Contains("empty", await Error(await f.Client.PostAsync("/predict", Multipart(("a.png", []))), HttpStatusCode.BadRequest));
        var noFiles = new MultipartFormDataContent { { new StringContent("x"), "field" } };
        Assert.Contains("no image", await Error(await f.Client.PostAsync("/predict/batch", noFiles), HttpStatusCode.BadRequest));
    }

    [Fact]
    public async Task Non_image_and_truncated_image_are_400()
    {
        Assert.Contains("not a readable image", await Error(await f.Client.PostAsync("/predict", Body("hello, not a picture"u8.ToArray())), HttpStatusCode.BadRequest));
        var png = ServerFixture.Picture(120, 90);
        var truncated = png[..(png.Length / 2)];
        Assert.Contains("truncated", await Error(await f.Client.PostAsync("/predict", Body(truncated)), HttpStatusCode.BadRequest));
        var jpeg = ServerFixture.Picture(120, 90, SKEncodedImageFormat.Jpeg);
        Assert.Equal(HttpStatusCode.BadRequest, (await f.Client.PostAsync("/predict", Body(jpeg[..(jpeg.Length / 3)], "image/jpeg"))).StatusCode);
    }

    [Fact]
    public async Task Wrong_or_missing_content_type_is_415()
    {
        var png = ServerFixture.Picture(32, 32);
        var refused = await Error(await f.Client.PostAsync("/predict", Body(png, "text/plain")), HttpStatusCode.UnsupportedMediaType);
        Assert.Contains("text/plain", refused);
        // Every type served is named, GIF and WebP included.
        foreach (var type in new[] { "image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "application/octet-stream", "multipart/form-data" })
            Assert.Contains(type, refused);
        Assert.Equal(HttpStatusCode.OK, (await f.Client.PostAsync("/predict", Body(ServerFixture.Picture(32, 32, SKEncodedImageFormat.Webp), "image/webp"))).StatusCode);
        Assert.Contains("missing Content-Type", await Error(await f.Client.PostAsync("/predict", Body(png, null)), HttpStatusCode.UnsupportedMediaType));
        Assert.Contains("multipart", await Error(await f.Client.PostAsync("/predict/batch", Body(png)), HttpStatusCode.UnsupportedMediaType));
    }

    [Fact]
    public async Task Oversized_body_is_413_declared_or_streamed()
    {
        // Raw sockets: the server answers 413 before the body is sent, which HttpClient reports as a broken pipe.
        var big = new byte[(1 << 20) + 10];
        ServerFixture.Picture(64, 64).CopyTo(big, 0);
        var (status, text) = await f.Main.RawAsync($"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {big.Length}\r\n\r\n", []);
        Assert.Equal(413, status);
        Assert.Contains("exceeds the limit", text);
        // Chunked (no Content-Length): refused while reading.
        var chunked = new MemoryStream();
        for (int i = 0; i < big.Length; i += 32768)
        {
            int n = Math.Min(32768, big.Length - i);
            chunked.Write(Encoding.ASCII.GetBytes($"{n:x}\r\n"));
            chunked.Write(big, i, n);
            chunked.Write("\r\n"u8);
        }
        chunked.Write("0\r\n\r\n"u8);
        (status, text) = await f.Main.RawAsync("POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n", chunked.ToArray());
        Assert.Equal(413, status);
        Assert.Contains("\"error\"", text);
    }

    [Fact]
    public async Task Too_many_pixels_or_images_are_refused()
    {
        Assert.Contains("limit is 300", await Error(await f.Client.PostAsync("/predict", Body(ServerFixture.Picture(301, 20))), HttpStatusCode.UnprocessableEntity));
        var quarter = ServerFixture.Picture(200, 200);
        Assert.Contains("pixels in all", await Error(await f.Client.PostAsync("/predict/batch", Multipart(("a.png", quarter), ("b.png", quarter), ("c.png", quarter))), HttpStatusCode.UnprocessableEntity));
        var small = ServerFixture.Picture(16, 16);
        Assert.Contains("more than 4 images", await Error(await f.Client.PostAsync("/predict/batch", Multipart(Enumerable.Range(0, 5).Select(i => ($"{i}.png", small)).ToArray())), HttpStatusCode.RequestEntityTooLarge));
        // /predict takes one image only.
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await f.Client.PostAsync("/predict", Multipart(("a.png", small), ("b.png", small)))).StatusCode);
    }

    [Fact]
    public async Task Bad_query_unknown_path_and_wrong_method_are_json_errors()
    {
        Assert.Contains("heatmap=true", await Error(await f.Client.PostAsync("/predict?heatmap=maybe", Body(ServerFixture.Picture(32, 32))), HttpStatusCode.BadRequest));
        Assert.Contains("no endpoint", await Error(await f.Client.GetAsync("/../etc/passwd"), HttpStatusCode.NotFound));
        Assert.Contains("takes POST", await Error(await f.Client.GetAsync("/predict"), HttpStatusCode.MethodNotAllowed));
        Assert.Contains("takes GET", await Error(await f.Client.PostAsync("/health", Body([1])), HttpStatusCode.MethodNotAllowed));
    }

    [Fact]
    public async Task File_names_from_clients_are_never_opened()
    {
        // A part named after a real file on the server, with an empty body: refused as empty, not read from disk.
        var real = Directory.GetFiles(f.Dir, "model.pth", SearchOption.AllDirectories).Single();
        Assert.Contains("empty", await Error(await f.Client.PostAsync("/predict", Multipart((real, []))), HttpStatusCode.BadRequest));
        var before = Directory.GetFileSystemEntries(f.Dir, "*", SearchOption.AllDirectories).Order().ToArray();
        var j = await Json(await f.Client.PostAsync("/predict", Multipart(("../../escape.png", ServerFixture.Picture(32, 32)))), HttpStatusCode.OK);
        Assert.Equal("../../escape.png", j.GetProperty("name").GetString());
        Assert.Equal(before, Directory.GetFileSystemEntries(f.Dir, "*", SearchOption.AllDirectories).Order().ToArray());
    }

    [Fact]
    public async Task A_full_queue_answers_503_at_once()
    {
        await using var server = await f.StartAsync(ServerFixture.Limits with { MaxConcurrentRequests = 1, QueueLimit = 0 });
        using var holder = await server.StallAsync("/predict");
        // The stalled request holds the only admission once the server has taken it in (it is then receiving its
        // body): wait for that, so that no request of ours can take the admission first and get the holder refused.
        using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
            while ((await server.MetricsAsync())["mambaad_requests_receiving"] < 1)
                await Task.Delay(20, limit.Token);
        HttpResponseMessage? refused = null;
        for (int i = 0; i < 200 && refused is null; i++)
        {
            var r = await server.Client.PostAsync("/predict", Body(ServerFixture.Picture(32, 32)));
            if (r.StatusCode == HttpStatusCode.ServiceUnavailable) refused = r;
        }
        Assert.NotNull(refused);
        Assert.Contains("server busy", await Error(refused!, HttpStatusCode.ServiceUnavailable));
        Assert.Equal("1", refused!.Headers.GetValues("Retry-After").Single());
        holder.Close();
        // Once the holder is gone the slot is free again.
        HttpStatusCode status = HttpStatusCode.ServiceUnavailable;
        for (int i = 0; i < 200 && status == HttpStatusCode.ServiceUnavailable; i++)
            status = (await server.Client.PostAsync("/predict", Body(ServerFixture.Picture(32, 32)))).StatusCode;
        Assert.Equal(HttpStatusCode.OK, status);
    }
}
