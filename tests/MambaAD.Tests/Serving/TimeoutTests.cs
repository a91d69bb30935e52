using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MambaAD.Inference;
using MambaAD.Server;

namespace MambaAD.Tests.Serving;

/// <summary>
/// A request that outlives <c>--timeout</c> gets a 504 JSON naming the stage it was in — queued, decoding, in the
/// forward, or about to be written — and never a 200 with an empty body. Test hooks hold a request in a stage until
/// its deadline has passed, so each stage's timeout is provoked whatever the speed of the machine.
/// </summary>
public class TimeoutTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    private static readonly ServerOptions OneSecond = ServerFixture.Limits with { RequestTimeout = TimeSpan.FromSeconds(1) };

    private static ByteArrayContent Png(int seed = 0)
    {
        var c = new ByteArrayContent(ServerFixture.Picture(64, 64, seed: seed));
        c.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return c;
    }

    private static MultipartFormDataContent Batch(int images)
    {
        var m = new MultipartFormDataContent();
        for (int i = 0; i < images; i++)
        {
            var part = new ByteArrayContent(ServerFixture.Picture(64, 64, seed: i));
            part.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            m.Add(part, "image", $"{i}.png");
        }
        return m;
    }

    /// <summary>Waits until <paramref name="token"/> is cancelled (the request's deadline), without throwing.</summary>
    private static async Task UntilCancelled(CancellationToken token)
    {
        try { await Task.Delay(Timeout.Infinite, token); } catch (OperationCanceledException) { }
    }

    /// <summary>Hooks that hold the <paramref name="nth"/> entry into <paramref name="stage"/> until that request's deadline.</summary>
    private static ServerHooks HoldUntilDeadline(Stage stage, int nth = 1)
    {
        int entries = 0;
        return new ServerHooks { Entering = (s, ct) => s == stage && Interlocked.Increment(ref entries) == nth ? UntilCancelled(ct) : Task.CompletedTask };
    }

    private static async Task<string> TimeoutError(HttpResponseMessage r)
    {
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.GatewayTimeout, $"expected 504, got {(int)r.StatusCode}: '{text}'");
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString()!;
        Assert.Contains("longer than 1 s", error);
        return error;
    }

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        while (!await condition())
        {
            Assert.False(limit.IsCancellationRequested, $"gave up waiting until {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_request_that_times_out_while_queued_gets_504_json_and_the_holder_too()
    {
        // One slot, held by a first request (its decoding waits for the test); a second times out in the queue.
        var release = new TaskCompletionSource();
        int decodes = 0;
        var hooks = new ServerHooks { Entering = (s, ct) => s == Stage.Decode && Interlocked.Increment(ref decodes) == 1 ? release.Task : Task.CompletedTask };
        await using var server = await f.StartAsync(OneSecond with { MaxConcurrentRequests = 1 }, hooks);
        var holder = server.Client.PostAsync("/predict", Png(1));
        await Until(async () => (await server.MetricsAsync())["mambaad_requests_in_flight"] == 1, "the first request holds the slot");

        Assert.Contains("waiting for a free inference slot", await TimeoutError(await server.Client.PostAsync("/predict", Png(2))));
        // The holder's deadline passed while it decoded: it is answered 504 too, not a late 200.
        release.SetResult();
        Assert.Contains("decoding", await TimeoutError(await holder));

        var metrics = await server.MetricsAsync();
        Assert.Equal(1, metrics["mambaad_request_timeouts_total{stage=\"queue\"}"]);
        Assert.Equal(1, metrics["mambaad_request_timeouts_total{stage=\"decode\"}"]);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/predict", Png(3))).StatusCode);
    }

    [Fact]
    public async Task The_forward_checks_the_deadline_between_sub_batches_and_frees_the_model()
    {
        // Held after the first sub-batch (the second entry into Forward) until the deadline: the rest is never scored.
        const int images = 3 * Predictor.SubBatch;
        await using var server = await f.StartAsync(OneSecond with { MaxBatchImages = images, MaxImagePixels = images * 64 * 64 }, HoldUntilDeadline(Stage.Forward, nth: 2));
        Assert.Contains("forward pass", await TimeoutError(await server.Client.PostAsync("/predict/batch", Batch(images))));
        var metrics = await server.MetricsAsync();
        Assert.Equal(Predictor.SubBatch, metrics["mambaad_forward_images_total"]);
        Assert.Equal(1, metrics["mambaad_request_timeouts_total{stage=\"forward\"}"]);
        // The forward is free again: the next request is scored.
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/predict", Png())).StatusCode);
    }

    [Theory]
    [InlineData("queue", "waiting for a free inference slot")]
    [InlineData("decode", "decoding")]
    [InlineData("forward", "forward pass")]
    [InlineData("response", "before the answer could be written")]
    public async Task A_deadline_in_any_stage_is_a_504_naming_it(string name, string named)
    {
        var stage = Enum.Parse<Stage>(name, ignoreCase: true);
        await using var server = await f.StartAsync(OneSecond, HoldUntilDeadline(stage));
        Assert.Contains(named, await TimeoutError(await server.Client.PostAsync("/predict", Png())));
        Assert.Equal(1, (await server.MetricsAsync())[$"mambaad_request_timeouts_total{{stage=\"{name}\"}}"]);
    }

    [Fact]
    public async Task A_batch_and_a_single_racing_one_slot_each_get_a_full_200_or_a_504_json()
    {
        // The reported case, without hooks: one slot, a short timeout, a 16-image batch then a single image. Which of
        // them times out depends on this machine's speed; what may never happen is a 200 without its JSON.
        var options = ServerFixture.Limits with
        {
            MaxConcurrentRequests = 1, RequestTimeout = TimeSpan.FromSeconds(0.25), MaxBatchImages = 16, MaxImagePixels = 16 * 128 * 128,
        };
        await using var server = await f.StartAsync(options);
        for (int round = 0; round < 2; round++)
        {
            var m = new MultipartFormDataContent();
            for (int i = 0; i < 16; i++)
            {
                var part = new ByteArrayContent(ServerFixture.Picture(128, 128, seed: i));
                part.Headers.ContentType = new MediaTypeHeaderValue("image/png");
                m.Add(part, "image", $"{i}.png");
            }
            var batch = server.Client.PostAsync("/predict/batch", m);
            var single = server.Client.PostAsync("/predict", Png(round));
            foreach (var (r, results) in new[] { (await batch, 16), (await single, 0) })
            {
                var text = await r.Content.ReadAsStringAsync();
                var json = JsonDocument.Parse(text).RootElement;
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    if (results > 0) Assert.Equal(results, json.GetProperty("results").GetArrayLength());
                    else Assert.True(json.GetProperty("score").GetDouble() >= 0);
                }
                else
                {
                    Assert.Equal(HttpStatusCode.GatewayTimeout, r.StatusCode);
                    Assert.Contains("longer than 0.25 s", json.GetProperty("error").GetString());
                }
            }
        }
    }

    [Fact]
    public async Task An_upload_that_outlives_the_timeout_gets_504()
    {
        await using var server = await f.StartAsync(OneSecond);
        using var stalled = await server.StallAsync("/predict");
        var text = await ServerFixture.ReadAnswerAsync(stalled.GetStream(), TimeSpan.FromMinutes(1));
        Assert.StartsWith("HTTP/1.1 504", text);
        Assert.Contains("longer than 1 s (timed out while receiving the request body)", text);
    }
}
