using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.IO;
using MambaAD.Imaging;
using MambaAD.Model;

namespace MambaAD.Inference;

/// <summary>One test image's outcome: a small record (the map itself is not kept, see <see cref="TestReport"/>).</summary>
/// <param name="Sample">The image.</param>
/// <param name="Score">Its image score (max of the smoothed map, §12).</param>
/// <param name="IsAnomalous">Its label for the metrics: max of the resized mask, or the folder's word when it has no mask (§12.6).</param>
/// <param name="HasMask">Whether its ground truth is known (a normal image, or a defect image with a mask): its pixels count in the pixel metrics.</param>
public sealed record ImageResult(Sample Sample, double Score, bool IsAnomalous, bool HasMask);

/// <summary>
/// The outcome of testing a model on a dataset's test split: the metrics, one small record per image, and what
/// calibration and the HTML report need — per-class pixel histograms (bounded, see <see cref="Evaluator"/>) and the
/// gallery's candidate thumbnails (<see cref="TestOptions.GalleryPerClass"/>) — but no anomaly map: memory does not
/// grow with the number of images beyond the records. Use <see cref="TestOptions.SaveMapsDir"/> to keep the maps.
/// </summary>
/// <param name="Result">Per-class metrics, mean and mAD.</param>
/// <param name="Images">One record per tested image, in test order.</param>
/// <param name="Warnings">Skipped files and vanished masks, one line each.</param>
/// <param name="ImageSize">The side of the maps (the model's input size).</param>
public sealed record TestReport(EvaluationResult Result, IReadOnlyList<ImageResult> Images, IReadOnlyList<string> Warnings, int ImageSize)
{
    /// <summary>Per class, the histogram of the pixels of its images with ground truth (calibration, report curves).</summary>
    internal IReadOnlyList<KeyValuePair<string, PixelHistogram>> Pixels { get; init; } = [];

    /// <summary>The gallery candidates, or null when none were kept.</summary>
    internal Gallery? Gallery { get; init; }
}

/// <summary>How to test.</summary>
/// <param name="BatchSize">Images per forward pass (16, as the official test batch).</param>
/// <param name="SaveMapsDir">Write each smoothed map as <c>DIR/&lt;class&gt;/&lt;defect&gt;/&lt;stem&gt;.npy</c> (the layout <c>mambaad eval</c> reads).</param>
/// <param name="SkipBad">Leave out unreadable images with a warning instead of stopping.</param>
/// <param name="Workers">Parallel image decoders; 0 for the core count.</param>
/// <param name="GalleryPerClass">
/// Images per class and kind (normal, anomalous) kept as thumbnails for an HTML report's gallery, which shows up to
/// this many rows per class, worst mistakes first; 0 keeps none. Up to twice this many images are kept per class,
/// each about 8·<paramref name="ThumbnailSize"/>² bytes (130 KB at 128).
/// </param>
/// <param name="ThumbnailSize">Side of the gallery pictures in pixels.</param>
public sealed record TestOptions(int BatchSize = 16, string? SaveMapsDir = null, bool SkipBad = false, int Workers = 0,
    int GalleryPerClass = 24, int ThumbnailSize = 128);

/// <summary>Runs a model over test images and computes the seven metrics per class (spec §12, §14).</summary>
public static class ModelTesting
{
    /// <summary>Tests a loaded model on <paramref name="samples"/> (e.g. a dataset's test split).</summary>
    public static TestReport Run(Predictor predictor, IReadOnlyList<Sample> samples, TestOptions? options = null,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        Run((b, ct) => predictor.Score(b.Images, b.Count, ct), predictor.ImageSize, predictor.Info.Normalization, samples, options,
            progress, cancellationToken);

    /// <summary>Tests a model in training (its mode is restored after each batch).</summary>
    internal static TestReport Run(IAnomalyModel model, InputNormalization normalization, IReadOnlyList<Sample> samples,
        TestOptions? options = null, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        Run((b, ct) => model.Run(b.Images, b.Count, ct), model.ImageSize, normalization, samples, options, progress, cancellationToken);

    /// <summary>
    /// Tests with <paramref name="score"/> given each batch; batches for which <paramref name="pixelsNotNeeded"/> says so
    /// come without their pixels (the scorer has their encoder features: the trainer's tests), so no gallery then.
    /// </summary>
    internal static TestReport Run(Func<Batch, CancellationToken, AnomalyMaps> score, int size, InputNormalization normalization,
        IReadOnlyList<Sample> samples, TestOptions? options, IProgress<(int Done, int Total)>? progress, CancellationToken cancellationToken,
        Func<IReadOnlyList<Sample>, bool>? pixelsNotNeeded = null)
    {
        var o = options ?? new TestOptions();
        if (o.GalleryPerClass < 0) throw new MambaADException($"the gallery size {o.GalleryPerClass} must be 0 or more", nameof(TestOptions.GalleryPerClass));
        if (pixelsNotNeeded is not null && o.GalleryPerClass > 0)
            throw new ArgumentException("a test that may skip the pixels keeps no gallery (GalleryPerClass 0)", nameof(options));
        var loader = new BatchLoader(samples, new LoaderOptions(o.BatchSize, size, normalization, LoadMasks: true,
            Workers: o.Workers, SkipBad: o.SkipBad, PixelsNotNeeded: pixelsNotNeeded));
        int plane = size * size;
        var evaluator = new Evaluator(size, size);
        var gallery = o.GalleryPerClass > 0 ? new Gallery(o.GalleryPerClass, o.ThumbnailSize) : null;
        var images = new List<ImageResult>();
        foreach (var batch in loader.Epoch(0, cancellationToken))
        {
            var maps = score(batch, cancellationToken);
            for (int i = 0; i < batch.Count; i++)
            {
                var s = batch.Samples[i];
                var map = maps.Map(i);
                byte[]? mask = batch.Masks is not null && batch.MaskKnown[i] ? batch.Masks.AsSpan(i * plane, plane).ToArray() : null;
                bool anomalous = mask is null ? s.IsFolderAnomalous : Array.IndexOf(mask, (byte)1) >= 0;
                evaluator.Add(s.ClassName, map, mask, s.IsFolderAnomalous, maps.Scores[i]);
                images.Add(new ImageResult(s, maps.Scores[i], anomalous, mask is not null));
                gallery?.Offer(s, maps.Scores[i], anomalous, batch.Images.AsSpan(i * 3 * plane, 3 * plane), normalization, map, size, mask);
                if (o.SaveMapsDir is not null)
                    NpyArray.FromFloats(map, size, size).Write(OutputPath.Under(o.SaveMapsDir, s.ClassName, s.DefectType, s.Stem + ".npy"));
            }
            progress?.Report((images.Count, samples.Count));
        }
        var warnings = loader.Warnings.ToList();
        if (loader.VanishedMasks > 0)
            warnings.Add($"{loader.VanishedMasks} defect image(s) have masks that vanish at {size}², so they count as normal (spec §12.6)");
        return new TestReport(evaluator.Evaluate(), images, warnings, size) { Pixels = evaluator.Pixels, Gallery = gallery };
    }
}
