using MambaAD.Checkpoints;

using MambaAD.Imaging;
using MambaAD.Model;
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
    private readonly object _forward = new();

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

    /// <summary>Scores a batch of decoded images (any sizes).</summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<RgbImage> images)
    {
        if (images.Count == 0) return [];
        int s = ImageSize, plane = s * s;
        var input = new float[images.Count * 3 * plane];
        Parallel.For(0, images.Count, i =>
            Info.Normalization.Normalize(Preprocess.ResizedRgb(images[i], s), s, s, input.AsSpan(i * 3 * plane, 3 * plane)));
        AnomalyResult result;
        float[] maps;
        lock (_forward)
        {
            using var scope = NewDisposeScope();
            var device = Model.parameters().First().device;
            using var x = tensor(input, [images.Count, 3, s, s]).to(device);
            result = Model.Predict(x);
            using (result.Maps) maps = result.Maps.data<float>().ToArray();
        }
        var threshold = Threshold;
        return images.Select((img, i) => new Prediction(result.Scores[i], maps.AsSpan(i * plane, plane).ToArray(), s,
            threshold is { } t ? result.Scores[i] > t : null, img.Width, img.Height)).ToList();
    }

    public void Dispose() => _checkpoint.Dispose();
}
