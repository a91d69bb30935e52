using MambaAD.Checkpoints;
using MambaAD.Imaging;
using MambaAD.Model;
using MambaAD.Onnx;

namespace MambaAD.Inference;

/// <summary>
/// A loaded model ready to score images: the official preprocessing (PIL-compatible resize, the checkpoint's
/// normalisation), the model, the anomaly map and score, and the checkpoint's thresholds. The one inference path:
/// <c>predict</c>, <c>test</c>, <c>calibrate</c>, the report and the server all score through it. One instance can
/// serve many threads: forward passes are serialised, preprocessing is not.
/// </summary>
public sealed class Predictor : IDisposable
{
    private readonly IAnomalyModel _model;
    private readonly SemaphoreSlim _forward = new(1, 1);

    internal Predictor(IAnomalyModel model, CheckpointInfo info, string modelPath)
    {
        _model = model;
        Info = info;
        ModelPath = modelPath;
    }

    /// <summary>
    /// Loads a checkpoint (ours, or an official one assuming <paramref name="officialConfig"/>), or a model exported to
    /// ONNX (<c>.onnx</c>, run by ONNX Runtime on the CPU, described by its own metadata).
    /// </summary>
    /// <param name="checkpoint">A model.pth, a checkpoint folder, a run folder (its best/, else last/), or a .onnx file.</param>
    /// <param name="officialConfig">The configuration of an official checkpoint (one without model.json); the official one when null.</param>
    /// <param name="device">"cpu", or "cuda" with a CUDA build of libtorch.</param>
    /// <exception cref="MambaADException">The checkpoint is missing, unreadable, or does not fit its configuration.</exception>
    public static Predictor Load(string checkpoint, MambaADConfig? officialConfig = null, string device = "cpu")
    {
        if (checkpoint.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var onnx = OnnxRuntimeModel.Load(checkpoint);
            return new Predictor(onnx, onnx.Info, Path.GetFullPath(checkpoint));
        }
        var loaded = Checkpoint.Load(checkpoint, officialConfig, device);
        return new Predictor(loaded.Model, loaded.Info, loaded.ModelPath);
    }

    /// <summary>The checkpoint's description: configuration, normalisation, classes, thresholds, training state.</summary>
    public CheckpointInfo Info { get; }

    /// <summary>The model file that was loaded.</summary>
    public string ModelPath { get; }

    /// <summary>The square side images are resized to, and the side of the maps.</summary>
    public int ImageSize => _model.ImageSize;

    /// <summary>An image threshold that overrides the checkpoint's (null: use the checkpoint's).</summary>
    public double? ImageThreshold { get; set; }

    /// <summary>The image threshold in force: <see cref="ImageThreshold"/> when set, else the checkpoint's (or none).</summary>
    public double? Threshold => ImageThreshold ?? Info.Thresholds?.Image;

    /// <summary>The pixel threshold in force (the checkpoint's, from <c>mambaad calibrate</c>), or none.</summary>
    public double? PixelThreshold => Info.Thresholds?.Pixel;

    /// <summary>Scores one image file.</summary>
    public Prediction Predict(string path) => Predict([ImageDecoder.DecodeRgb(path)])[0];

    /// <summary>Images per forward pass: a larger batch runs in sub-batches, so that a cancelled caller stops between them.</summary>
    internal const int SubBatch = 4;

    /// <summary>
    /// Scores a batch of decoded images (any sizes), <see cref="SubBatch"/> at a time. <paramref name="cancellationToken"/>
    /// is checked while waiting for the forward and between sub-batches, so that work whose caller gave up stops early
    /// and frees the forward for others; <paramref name="progress"/> hears the number of images scored after each sub-batch.
    /// </summary>
    public IReadOnlyList<Prediction> Predict(IReadOnlyList<RgbImage> images, CancellationToken cancellationToken = default, IProgress<int>? progress = null)
    {
        int size = 3 * ImageSize * ImageSize;
        var input = new float[images.Count * size];
        Parallel.For(0, images.Count, i => Preprocess(images[i], input.AsSpan(i * size, size)));
        return Predict(input, [.. images.Select(im => (im.Width, im.Height))], cancellationToken, progress);
    }

    /// <summary>One image as the model's input (3·<see cref="ImageSize"/>² floats): resized and normalised as in training.</summary>
    internal void Preprocess(RgbImage image, Span<float> destination) =>
        Imaging.Preprocess.Image(image, ImageSize, Info.Normalization, destination);

    /// <summary>
    /// Scores images already preprocessed (<see cref="Preprocess"/>, one after another in <paramref name="input"/>) whose
    /// original sizes are <paramref name="sizes"/>, <paramref name="subBatch"/> at a time (<see cref="SubBatch"/> unless
    /// the caller wants larger forward passes: per image, a forward of 4 costs 4–8 % more than one of 8, docs/performance.md,
    /// "Issue 14, phase 24").
    /// </summary>
    internal IReadOnlyList<Prediction> Predict(float[] input, IReadOnlyList<(int Width, int Height)> sizes, CancellationToken cancellationToken = default,
        IProgress<int>? progress = null, int subBatch = SubBatch)
    {
        int s = ImageSize, size = 3 * s * s;
        var threshold = Threshold;
        var predictions = new List<Prediction>(sizes.Count);
        for (int start = 0; start < sizes.Count; start += subBatch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(subBatch, sizes.Count - start);
            var maps = Score(input[(start * size)..((start + n) * size)], n, cancellationToken);
            for (int i = 0; i < n; i++)
                predictions.Add(new Prediction(maps.Scores[i], maps.Map(i), s,
                    threshold is { } t ? maps.Scores[i] > t : null, sizes[start + i].Width, sizes[start + i].Height));
            progress?.Report(start + n);
        }
        return predictions;
    }

    /// <summary>The forward pass on preprocessed images, one caller at a time.</summary>
    internal AnomalyMaps Score(float[] images, int count, CancellationToken cancellationToken = default)
    {
        _forward.Wait(cancellationToken);
        try { return _model.Run(images, count, cancellationToken); }
        finally { _forward.Release(); }
    }

    /// <inheritdoc />
    public void Dispose() => _model.Dispose();
}
