using MambaAD.Data;
using MambaAD.Evaluation;
using MambaAD.IO;
using MambaAD.Imaging;
using MambaAD.Model;

namespace MambaAD.Inference;

/// <summary>One test image's outcome.</summary>
/// <param name="Sample">The image.</param>
/// <param name="Score">Its image score (max of the smoothed map, §12).</param>
/// <param name="Map">The smoothed map, S·S floats row-major.</param>
/// <param name="Mask">The binarised ground truth (S·S in {0,1}), or null when the defect image has no mask.</param>
public sealed record ImageResult(Sample Sample, double Score, float[] Map, byte[]? Mask);

/// <summary>The outcome of testing a model on a dataset's test split.</summary>
public sealed record TestReport(EvaluationResult Result, IReadOnlyList<ImageResult> Images, IReadOnlyList<string> Warnings, int ImageSize);

/// <summary>How to test.</summary>
/// <param name="BatchSize">Images per forward pass (16, as the official test batch).</param>
/// <param name="SaveMapsDir">Write each smoothed map as <c>DIR/&lt;class&gt;/&lt;defect&gt;/&lt;stem&gt;.npy</c> (the layout <c>mambaad eval</c> reads).</param>
/// <param name="SkipBad">Leave out unreadable images with a warning instead of stopping.</param>
/// <param name="Workers">Parallel image decoders; 0 for the core count.</param>
public sealed record TestOptions(int BatchSize = 16, string? SaveMapsDir = null, bool SkipBad = false, int Workers = 0);

/// <summary>Runs a model over test images and computes the seven metrics per class (spec §12, §14).</summary>
public static class ModelTesting
{
    /// <summary>Tests a loaded model on <paramref name="samples"/> (e.g. a dataset's test split).</summary>
    public static TestReport Run(Predictor predictor, IReadOnlyList<Sample> samples, TestOptions? options = null,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        Run(predictor.Score, predictor.ImageSize, predictor.Info.Normalization, samples, options, progress, cancellationToken);

    /// <summary>Tests a model in training (its mode is restored after each batch).</summary>
    internal static TestReport Run(IAnomalyModel model, InputNormalization normalization, IReadOnlyList<Sample> samples,
        TestOptions? options = null, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        Run(model.Run, model.ImageSize, normalization, samples, options, progress, cancellationToken);

    private static TestReport Run(Func<float[], int, CancellationToken, AnomalyMaps> score, int size, InputNormalization normalization,
        IReadOnlyList<Sample> samples, TestOptions? options, IProgress<(int Done, int Total)>? progress, CancellationToken cancellationToken)
    {
        var o = options ?? new TestOptions();
        var loader = new BatchLoader(samples, new LoaderOptions(o.BatchSize, size, normalization, LoadMasks: true,
            Workers: o.Workers, SkipBad: o.SkipBad));
        int plane = size * size;
        var evaluator = new Evaluator(size, size);
        var images = new List<ImageResult>();
        foreach (var batch in loader.Epoch(0, cancellationToken))
        {
            var maps = score(batch.Images, batch.Count, cancellationToken);
            for (int i = 0; i < batch.Count; i++)
            {
                var s = batch.Samples[i];
                var map = maps.Map(i);
                byte[]? mask = batch.Masks is not null && batch.MaskKnown[i] ? batch.Masks.AsSpan(i * plane, plane).ToArray() : null;
                evaluator.Add(s.ClassName, map, mask, s.IsFolderAnomalous, maps.Scores[i]);
                images.Add(new ImageResult(s, maps.Scores[i], map, mask));
                if (o.SaveMapsDir is not null)
                    NpyArray.FromFloats(map, size, size).Write(OutputPath.Under(o.SaveMapsDir, s.ClassName, s.DefectType, s.Stem + ".npy"));
            }
            progress?.Report((images.Count, samples.Count));
        }
        var warnings = loader.Warnings.ToList();
        if (loader.VanishedMasks > 0)
            warnings.Add($"{loader.VanishedMasks} defect image(s) have masks that vanish at {size}², so they count as normal (spec §12.6)");
        return new TestReport(evaluator.Evaluate(), images, warnings, size);
    }
}
