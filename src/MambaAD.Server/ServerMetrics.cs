using Microsoft.AspNetCore.Http;
using Prometheus;

namespace MambaAD.Server;

/// <summary>
/// What <c>GET /metrics</c> exposes in the Prometheus text format (prometheus-net, one registry per server so that
/// servers in one process do not mix): requests by endpoint and status code, errors by code, the latency histogram,
/// timeouts by stage, the admission gate (receiving, queued, in flight), images through the forward, readiness, and
/// the process's own figures (working set = RSS, CPU, GC).
/// </summary>
internal sealed class ServerMetrics
{
    /// <summary>The content type of the text exposition format 0.0.4.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Counter _requests, _errors, _timeouts, _forwardImages;
    private readonly Histogram _duration;

    public ServerMetrics(AdmissionGate gate, Func<ModelStatus> status)
    {
        var f = Metrics.WithCustomRegistry(_registry);
        // Gauges of the server's state are read when scraped.
        var published = new List<(Gauge Gauge, Func<double> Value)>();
        void Publish(string name, string help, Func<double> value) => published.Add((f.CreateGauge(name, help), value));
        _registry.AddBeforeCollectCallback(() => { foreach (var (g, v) in published) g.Set(v()); });
        _requests = f.CreateCounter("mambaad_http_requests_total", "HTTP requests answered, by endpoint and status code.", "endpoint", "code");
        _errors = f.CreateCounter("mambaad_http_errors_total", "HTTP requests answered with an error (4xx or 5xx), by status code.", "code");
        _duration = f.CreateHistogram("mambaad_http_request_duration_seconds", "Time from the request's headers to its answer, by endpoint.",
            new HistogramConfiguration { LabelNames = ["endpoint"], Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        _timeouts = f.CreateCounter("mambaad_request_timeouts_total", "Prediction requests answered 504, by the stage they were in: upload, queue, decode, forward or response.", "stage");
        _forwardImages = f.CreateCounter("mambaad_forward_images_total", "Images scored by forward passes.");
        Publish("mambaad_queue_length", "Prediction requests waiting for a slot, their body received.", () => gate.Waiting);
        Publish("mambaad_requests_receiving", "Admitted prediction requests still receiving their body.", () => gate.Receiving);
        Publish("mambaad_requests_in_flight", "Prediction requests holding a slot: decoding, in the forward, or encoding.", () => gate.Active);
        Publish("mambaad_slots", "Prediction requests processed at once (--concurrency).", () => gate.Slots);
        Publish("mambaad_queue_limit", "Admitted requests beyond the slots (--queue).", () => gate.QueueLimit);
        Publish("mambaad_gc_pause_seconds_total", "Time the process spent paused in garbage collections since it started.", () => GC.GetTotalPauseDuration().TotalSeconds);
        Publish("mambaad_ready", "1 when the model is loaded and warmed up and the server is not stopping, else 0.", () => status() == ModelStatus.Ready ? 1 : 0);
        DotNetStats.Register(_registry);
    }

    public void Request(string endpoint, int code, TimeSpan duration)
    {
        var c = code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _requests.WithLabels(endpoint, c).Inc();
        if (code >= 400) _errors.WithLabels(c).Inc();
        _duration.WithLabels(endpoint).Observe(duration.TotalSeconds);
    }

    public void Timeout(Stage stage) => _timeouts.WithLabels(stage.ToString().ToLowerInvariant()).Inc();

    public void ForwardImages(int count) => _forwardImages.Inc(count);

    public async Task WriteAsync(HttpResponse response, CancellationToken ct)
    {
        response.ContentType = ContentType;
        await _registry.CollectAndExportAsTextAsync(response.Body, ct);
    }
}
