using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MambaAD.Inference;
using MambaAD.Server;
using Microsoft.Extensions.Hosting;

namespace MambaAD.Tests.Serving;

/// <summary><c>/health</c> (readiness) says ready only after the load and a warm-up forward; <c>/metrics</c> is what Prometheus scrapes.</summary>
public class HealthAndMetricsTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    private static async Task<(HttpStatusCode Status, JsonElement Json)> Get(HttpClient client, string path)
    {
        var r = await client.GetAsync(path);
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static ByteArrayContent Png()
    {
        var c = new ByteArrayContent(ServerFixture.Picture(64, 64));
        c.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return c;
    }

    [Fact]
    public async Task Health_is_503_loading_until_the_model_is_loaded_and_warmed_up_while_liveness_is_200()
    {
        using var release = new ManualResetEventSlim();
        var options = ServerFixture.Limits;
        await using var server = await ServerFixture.StartAsync(ct =>
        {
            release.Wait(ct);
            return Predictor.Load(f.CheckpointDir);
        }, options, hooks: null, waitReady: false, ownsPredictor: true);

        var (status, json) = await Get(server.Client, InferenceServer.ReadinessPath);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("loading", json.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, (await Get(server.Client, InferenceServer.LivenessPath)).Status);
        var refused = await server.Client.PostAsync("/predict", Png());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Contains("not ready (loading)", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await server.Client.GetAsync("/model")).StatusCode);
        Assert.Equal(0, (await server.MetricsAsync())["mambaad_ready"]);

        release.Set();
        Assert.True(await InferenceServer.WhenReady(server.App).WaitAsync(TimeSpan.FromMinutes(2)));
        (status, json) = await Get(server.Client, InferenceServer.ReadinessPath);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ready", json.GetProperty("status").GetString());
        Assert.True(json.GetProperty("warm_up_seconds").GetDouble() > 0, "a warm-up forward ran before ready");
        Assert.Equal(1, (await server.MetricsAsync())["mambaad_ready"]);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/predict", Png())).StatusCode);
    }

    [Fact]
    public async Task A_failed_load_stops_the_server_and_its_error_is_rethrown()
    {
        var server = await ServerFixture.StartAsync(_ => throw new MambaADException("model.pth: not a checkpoint"), ServerFixture.Limits, hooks: null, waitReady: false);
        await using (server)
        {
            Assert.False(await InferenceServer.WhenReady(server.App).WaitAsync(TimeSpan.FromMinutes(1)));
            await server.App.WaitForShutdownAsync().WaitAsync(TimeSpan.FromMinutes(1));
            var e = Assert.Throws<MambaADException>(() => InferenceServer.ThrowIfLoadFailed(server.App));
            Assert.Equal("model.pth: not a checkpoint", e.Message);
        }
    }

    [Fact]
    public async Task Metrics_are_in_the_prometheus_text_format_and_count_requests_errors_and_latency()
    {
        await using var server = await f.StartAsync(ServerFixture.Limits);
        var before = await server.MetricsAsync();
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/predict", Png())).StatusCode);
        var text = new StringContent("not an image");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await server.Client.PostAsync("/predict", text)).StatusCode);

        var r = await server.Client.GetAsync("/metrics");
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", r.Content.Headers.ContentType?.ToString());
        var exposition = await r.Content.ReadAsStringAsync();
        foreach (var (name, type) in new[]
        {
            ("mambaad_http_requests_total", "counter"), ("mambaad_http_errors_total", "counter"), ("mambaad_http_request_duration_seconds", "histogram"),
            ("mambaad_request_timeouts_total", "counter"), ("mambaad_forward_images_total", "counter"), ("mambaad_queue_length", "gauge"),
            ("mambaad_requests_in_flight", "gauge"), ("mambaad_requests_receiving", "gauge"), ("mambaad_ready", "gauge"), ("process_working_set_bytes", "gauge"),
        })
            Assert.Contains($"# TYPE {name} {type}\n", exposition);
        var after = ServerFixture.ParseMetrics(exposition);
        double Delta(string key) => after.GetValueOrDefault(key) - before.GetValueOrDefault(key);
        Assert.Equal(1, Delta("mambaad_http_requests_total{endpoint=\"/predict\",code=\"200\"}"));
        Assert.Equal(1, Delta("mambaad_http_requests_total{endpoint=\"/predict\",code=\"415\"}"));
        Assert.Equal(1, Delta("mambaad_http_errors_total{code=\"415\"}"));
        Assert.Equal(1, Delta("mambaad_forward_images_total"));
        Assert.Equal(0, after["mambaad_queue_length"]);
        Assert.Equal(0, after["mambaad_requests_in_flight"]);
        Assert.True(after["process_working_set_bytes"] > 0);
        // The histogram's buckets are cumulative and end in +Inf = the count.
        var buckets = after.Where(kv => kv.Key.StartsWith("mambaad_http_request_duration_seconds_bucket{endpoint=\"/predict\"")).Select(kv => kv.Value).ToList();
        Assert.True(buckets.Count > 5);
        Assert.Equal(buckets.Order(), buckets);
        Assert.Equal(2, after["mambaad_http_request_duration_seconds_count{endpoint=\"/predict\"}"] - before.GetValueOrDefault("mambaad_http_request_duration_seconds_count{endpoint=\"/predict\"}"));
        Assert.Equal(after["mambaad_http_request_duration_seconds_count{endpoint=\"/predict\"}"], after["mambaad_http_request_duration_seconds_bucket{endpoint=\"/predict\",le=\"+Inf\"}"]);
    }
}
