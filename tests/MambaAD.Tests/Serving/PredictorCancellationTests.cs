using MambaAD.Imaging;
using MambaAD.Inference;

namespace MambaAD.Tests.Serving;

/// <summary><see cref="Predictor.Predict(IReadOnlyList{RgbImage}, CancellationToken, IProgress{int})"/> runs sub-batches and stops between them when cancelled.</summary>
public class PredictorCancellationTests(ServerFixture f) : IClassFixture<ServerFixture>
{
    private sealed class Recorder(Action<int>? then = null) : IProgress<int>
    {
        public List<int> Reports { get; } = [];
        public void Report(int value) { Reports.Add(value); then?.Invoke(value); }
    }

    private static List<RgbImage> Images(int n) =>
        Enumerable.Range(0, n).Select(i => ImageDecoder.DecodeRgb(ServerFixture.Picture(48 + i, 40, seed: i), $"{i}")).ToList();

    [Fact]
    public void Sub_batches_report_progress_and_give_the_same_scores_as_one_at_a_time()
    {
        var images = Images(2 * Predictor.SubBatch + 1);
        var progress = new Recorder();
        var all = f.Predictor.Predict(images, CancellationToken.None, progress);
        Assert.Equal([Predictor.SubBatch, 2 * Predictor.SubBatch, 2 * Predictor.SubBatch + 1], progress.Reports);
        for (int i = 0; i < images.Count; i++)
        {
            Assert.Equal(f.Predictor.Predict([images[i]])[0].Score, all[i].Score, 5);
            Assert.Equal(images[i].Width, all[i].Width);
        }
    }

    [Fact]
    public void A_cancelled_caller_stops_after_the_sub_batch_in_progress()
    {
        using var cts = new CancellationTokenSource();
        var progress = new Recorder(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() => f.Predictor.Predict(Images(3 * Predictor.SubBatch), cts.Token, progress));
        Assert.Equal([Predictor.SubBatch], progress.Reports);
        // Cancelled before it starts: nothing is scored.
        var none = new Recorder();
        Assert.ThrowsAny<OperationCanceledException>(() => f.Predictor.Predict(Images(1), cts.Token, none));
        Assert.Empty(none.Reports);
    }
}
