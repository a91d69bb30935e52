using MambaAD.Imaging;
using MambaAD.Model;
using MambaAD.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MambaAD.Inference;

/// <summary>
/// A loaded model ready to score images: the official preprocessing (PIL-compatible resize, the checkpoint's
/// normalisation), the model, the anomaly map and score, and the checkpoint's thresholds. One instance can serve
/// many threads: forward passes are serialised, preprocessing is not.
/// </summary>
public sealed class Predictor : IDisposable
{
    private readonly LoadedCheckpoint _checkpoint;
    private readonly SemaphoreSlim _forward = new(1, 1);

    private Predictor(LoadedCheckpoint checkpoint) => _checkpoint = checkpoint;

    /// <summary>Loads a checkpoint (ours, or an official one assuming <paramref name="officialConfig"/>).</summary>
    public static Predictor Load(string checkpoint, MambaADConfig? officialConfig = null, string device = "cpu") =>
        new(Checkpoint.Load(checkpoint, officialConfig, device));

    public CheckpointInfo Info => _checkpoint.Info;
    public string ModelPath => _checkpoint.ModelPath;
    public MambaADModel Model => _checkpoint.Model;
    public int ImageSize => Model.Config.ImageSize;

    /// <summary>Image threshold used for <see cref="Prediction.IsAnomalous"/>: an explicit override, else the checkpoint's.</summary>
    public double? ImageThreshold { get; set; }

    /// <summary>The image threshold in force: <see cref="ImageThreshold"/> when set, else the checkpoint's (or none).</summary>
    public double? Threshold => ImageThreshold ?? Info.Thresholds?.Image;

    public Prediction Predict(string path) => Predict([ImageDecoder.DecodeRgb(path)])[0];

    /// <summary>Images per forward pass: a larger batch runs in sub-batches, so that a cancelled caller stops between them.</summary>
    internal const int SubBatch = 4;

    /// <summary>
    /// Scores a batch of decoded images (any sizes), <see cref="SubBatch"/> at a time. <paramref name="ct"/> is checked
    /// while waiting for the forward and between sub-batches, so that work whose caller gave up stops early and frees
    /// the forward for others; <paramref name="progress"/> hears the number of images scored after each sub-batch.
    /// </summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<RgbImage> images, CancellationToken ct = default, IProgress<int>? progress = null)
    {
        int s = ImageSize, plane = s * s;
        var threshold = Threshold;
        var predictions = new List<Prediction>(images.Count);
        for (int start = 0; start < images.Count; start += SubBatch)
        {
            ct.ThrowIfCancellationRequested();
            int n = Math.Min(SubBatch, images.Count - start);
            var input = new float[n * 3 * plane];
            Parallel.For(0, n, i =>
                Info.Normalization.Normalize(Preprocess.ResizedRgb(images[start + i], s), s, s, input.AsSpan(i * 3 * plane, 3 * plane)));
            AnomalyResult result;
            float[] maps;
            _forward.Wait(ct);
            try
            {
                using var scope = NewDisposeScope();
                var device = Model.parameters().First().device;
                using var x = tensor(input, [n, 3, s, s]).to(device);
                result = Model.Predict(x);
                using (result.Maps) maps = result.Maps.data<float>().ToArray();
            }
            finally
            {
                _forward.Release();
            }
            for (int i = 0; i < n; i++)
                predictions.Add(new Prediction(result.Scores[i], maps.AsSpan(i * plane, plane).ToArray(), s,
                    threshold is { } t ? result.Scores[i] > t : null, images[start + i].Width, images[start + i].Height));
            progress?.Report(start + n);
        }
        return predictions;
    }

    public void Dispose() => _checkpoint.Dispose();
}
