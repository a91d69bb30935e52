using System.Runtime.CompilerServices;
using MambaAD.Imaging;
using MambaAD.IO;
using MambaAD.Util;

namespace MambaAD.Inference;

/// <summary>How <see cref="PredictionWriter"/> runs.</summary>
/// <param name="SaveMaps">Also write each smoothed map (float32, model size) under maps/.</param>
/// <param name="Batch">Images per forward pass. Shards and resumed runs must use the same value to give the same bytes.</param>
/// <param name="SkipBad">An unreadable image gets a row with an empty score and the reason in <c>error</c>, and the run goes on.</param>
/// <param name="Resume">Keep the rows an earlier run of the same inputs wrote in <c>scores.csv</c>, and continue after them.</param>
/// <param name="Shard">Which part of the sorted inputs this run scores (<see cref="Inference.Shard"/>); all when null.</param>
internal sealed record PredictOptions(bool SaveMaps = false, int Batch = 8, bool SkipBad = false, bool Resume = false, Shard? Shard = null);

/// <summary>What a <see cref="PredictionWriter"/> run did.</summary>
/// <param name="Inputs">Inputs of this shard.</param>
/// <param name="Kept">Rows kept from an earlier run (<see cref="PredictOptions.Resume"/>).</param>
/// <param name="Scored">Images scored now.</param>
/// <param name="Skipped">Unreadable images listed with their reason (<see cref="PredictOptions.SkipBad"/>).</param>
/// <param name="Interrupted">Stopped by the cancellation token before the end: every row written is complete.</param>
internal sealed record PredictSummary(int Inputs, int Kept, int Scored, IReadOnlyList<string> Skipped, bool Interrupted);

/// <summary>
/// Writes predictions for image files into a folder, streaming: per input, its files (atomically) and then its row
/// of <c>scores.csv</c> (<see cref="ScoresCsv"/>, flushed at once). Files: <c>overlays/&lt;name&gt;.png</c>,
/// <c>masks/&lt;name&gt;.png</c> when a pixel threshold is known, <c>maps/&lt;name&gt;.npy</c> (float32, model size)
/// with <see cref="PredictOptions.SaveMaps"/>, where &lt;name&gt; is the input's path below the inputs' common folder
/// with its whole file name (<see cref="ImageFiles.OutputName"/>): distinct per input, the same in every shard and
/// resumed run. Rows follow the sorted inputs, and batches are whole batches of that order (<see cref="Shard"/>),
/// so a resumed run, or shards concatenated in order, give the bytes of one uninterrupted run — <c>scores.csv</c>
/// has its header only in the first shard. Nothing is held beyond one batch.
/// </summary>
internal static class PredictionWriter
{
    /// <summary>Originals up to this many pixels are kept from decoding to their overlay; larger ones are read twice.</summary>
    private const long KeptPixels = 4L << 20;

    /// <summary>Scores <paramref name="files"/> (any order; they are sorted) into <paramref name="outDir"/>.</summary>
    public static PredictSummary Write(Predictor predictor, IReadOnlyList<string> files, string outDir, PredictOptions? options = null,
        Action<string, Prediction>? onEach = null, CancellationToken cancellationToken = default) =>
        Write(predictor, ImageFiles.Of(files), outDir, options, onEach, cancellationToken);

    /// <summary>Scores the inputs of this run's shard into <paramref name="outDir"/>.</summary>
    /// <exception cref="MambaADException">An unreadable image (without SkipBad), an output folder that is a file, a scores.csv of other inputs.</exception>
    public static PredictSummary Write(Predictor predictor, ImageFiles inputs, string outDir, PredictOptions? options = null,
        Action<string, Prediction>? onEach = null, CancellationToken cancellationToken = default)
    {
        var o = options ?? new PredictOptions();
        if (o.Batch <= 0) throw new MambaADException($"the batch size {o.Batch} must be positive", "BatchSize");
        var shard = o.Shard ?? Shard.All;
        var dir = OutputPath.Folder(outDir, "OutDir"); // not a file, created, writable
        var (start, end) = shard.Range(inputs.Files.Count, o.Batch);
        var mine = inputs.Files.Skip(start).Take(end - start).ToList();
        using var csv = ScoresCsv.Open(Path.Combine(dir, "scores.csv"), mine, header: shard.Index == 0, o.Resume);
        double? pixel = predictor.PixelThreshold;
        var skipped = new List<string>();
        int next = start + csv.Kept, scored = 0;
        // Resume at the start of the batch that holds the first missing row: the batch is formed as in one run.
        for (int first = start + (next - start) / o.Batch * o.Batch; first < end; first += o.Batch)
        {
            if (cancellationToken.IsCancellationRequested) return new PredictSummary(mine.Count, csv.Kept, scored, skipped, true);
            int count = Math.Min(o.Batch, end - first);
            // Decoded and preprocessed in parallel; a large original is not kept for its overlay but read again then,
            // so that a batch of large images does not hold them all at once; a dead original is collected after each
            // image (LargeGarbage), not when the GC's budget says.
            int size = 3 * predictor.ImageSize * predictor.ImageSize;
            var input = new float[count * size];
            var images = new RgbImage?[count];
            var sizes = new (int Width, int Height)[count];
            var errors = new MambaADException?[count];
            Parallel.For(0, count, k =>
            {
                errors[k] = Read(k);
                LargeGarbage.CollectIfDue();
            });
            // Not inlined: once it returns, no local of it refers to a dropped original, and the collection frees it.
            [MethodImpl(MethodImplOptions.NoInlining)]
            MambaADException? Read(int k)
            {
                try
                {
                    var image = ImageDecoder.DecodeRgb(inputs.Files[first + k]);
                    predictor.Preprocess(image, input.AsSpan(k * size, size));
                    sizes[k] = (image.Width, image.Height);
                    images[k] = (long)image.Width * image.Height <= KeptPixels ? image : null;
                    return null;
                }
                catch (MambaADException e) { return e; }
            }
            if (!o.SkipBad && errors.FirstOrDefault(e => e is not null) is { } error) throw error;
            var readable = Enumerable.Range(0, count).Where(k => errors[k] is null).ToList();
            var readableInput = new float[readable.Count * size];
            for (int r = 0; r < readable.Count; r++) input.AsSpan(readable[r] * size, size).CopyTo(readableInput.AsSpan(r * size));
            var predictions = predictor.Predict(readableInput, [.. readable.Select(k => sizes[k])], cancellationToken, subBatch: o.Batch);
            var written = new (string Overlay, string? Mask, string? Map)[count];
            var large = new object();
            Parallel.For(0, readable.Count, r =>
            {
                Write(r);
                LargeGarbage.CollectIfDue();
            });
            // Not inlined, as Read: a large original read again for its overlay is unreachable once it returns.
            [MethodImpl(MethodImplOptions.NoInlining)]
            void Write(int r)
            {
                int k = readable[r], i = first + k;
                if (i < next) return; // its row is already in scores.csv
                var pr = predictions[r];
                string overlay = inputs.OutputName(i, "overlays", ".png");
                if (images[k] is { } kept) WriteOverlay(kept);
                else lock (large) WriteOverlay(ImageDecoder.DecodeRgb(inputs.Files[i])); // one large original at a time
                void WriteOverlay(RgbImage original) =>
                    AtomicFile.WriteAllBytes(Path.Combine(dir, overlay), HeatmapOverlay.OverlayPng(original, pr.Map, pr.MapSize, 0, HeatmapOverlay.ColourTop(pr.Map, pixel)));
                string? mask = pixel is { } t ? inputs.OutputName(i, "masks", ".png") : null;
                if (mask is not null) AtomicFile.WriteAllBytes(Path.Combine(dir, mask), HeatmapOverlay.MaskPng(pr.Map, pr.MapSize, pixel!.Value, pr.Width, pr.Height));
                string? map = o.SaveMaps ? inputs.OutputName(i, "maps", ".npy") : null;
                if (map is not null) NpyArray.FromFloats(pr.Map, pr.MapSize, pr.MapSize).Write(Path.Combine(dir, map));
                written[k] = (overlay, mask, map);
            }
            for (int k = 0, r = 0; k < count; k++)
            {
                int i = first + k;
                bool ok = errors[k] is null;
                var pr = ok ? predictions[r++] : null;
                if (i < next) continue;
                var file = inputs.Files[i];
                if (pr is null)
                {
                    csv.Append(file, null, null, null, null, null, errors[k]!.Message);
                    skipped.Add(errors[k]!.Message);
                    continue;
                }
                csv.Append(file, pr.Score, pr.IsAnomalous, written[k].Overlay, written[k].Mask, written[k].Map, null);
                scored++;
                onEach?.Invoke(file, pr);
            }
            csv.Sync();
            next = first + count;
        }
        return new PredictSummary(mine.Count, csv.Kept, scored, skipped, false);
    }
}
