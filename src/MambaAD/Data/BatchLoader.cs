using MambaAD.Imaging;

namespace MambaAD.Data;

/// <summary>
/// Yields preprocessed batches (spec §13) with parallel decoding and prefetch, so that a training loop is not
/// waiting on images: up to <see cref="LoaderOptions.Prefetch"/> batches are decoded in the background, each by
/// <see cref="LoaderOptions.Workers"/> threads. Shuffling is deterministic (seed, epoch); drop_last is optional.
/// </summary>
internal sealed class BatchLoader
{
    private readonly IReadOnlyList<Sample> _samples;
    private readonly LoaderOptions _o;
    private readonly InputNormalization _norm;
    private readonly List<string> _warnings = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _vanished = new();

    /// <summary>A loader over <paramref name="samples"/>.</summary>
    public BatchLoader(IReadOnlyList<Sample> samples, LoaderOptions? options = null)
    {
        _o = options ?? new LoaderOptions();
        if (_o.BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {_o.BatchSize}");
        if (_o.ImageSize <= 0) throw new ArgumentException($"ImageSize must be positive, got {_o.ImageSize}");
        if (samples.Count == 0) throw new MambaADException("no images to load: the selected classes have no samples in this split");
        _samples = samples;
        _norm = _o.Normalization ?? InputNormalization.ImageNet;
    }

    /// <summary>Batches in one epoch (with drop_last, the incomplete tail is not counted).</summary>
    public int BatchesPerEpoch => _o.DropLast ? _samples.Count / _o.BatchSize : (_samples.Count + _o.BatchSize - 1) / _o.BatchSize;

    /// <summary>Files left out because of <see cref="LoaderOptions.SkipBad"/>, one line each.</summary>
    public IReadOnlyList<string> Warnings { get { lock (_warnings) return [.. _warnings]; } }

    /// <summary>Defect-folder images (distinct, over all epochs so far) whose mask vanished after resizing: they count as normal (§12.6).</summary>
    public int VanishedMasks => _vanished.Count;

    /// <summary>The sample order of an epoch: identity, or a Fisher–Yates permutation seeded by (seed, epoch).</summary>
    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, _samples.Count).ToArray();
        if (_o.Shuffle)
        {
            var rng = new Random(unchecked(_o.Seed * 1_000_003 + epoch)); // System.Random(int) is stable across runtimes
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = rng.Next(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }
        return order;
    }

    /// <summary>
    /// The batches of one epoch, from batch <paramref name="startBatch"/> on (a resumed run continues mid-epoch in
    /// the same order). Decoding runs ahead in the background; stopping early cancels it.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch = 0, CancellationToken cancellationToken = default, int startBatch = 0)
    {
        var order = Order(epoch);
        int batches = BatchesPerEpoch;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pending = new Queue<Task<Batch>>();
        int next = Math.Clamp(startBatch, 0, batches);
        try
        {
            while (next < batches || pending.Count > 0)
            {
                while (next < batches && pending.Count < Math.Max(1, _o.Prefetch))
                {
                    int start = next * _o.BatchSize;
                    var idx = order.AsSpan(start, Math.Min(_o.BatchSize, order.Length - start)).ToArray();
                    int number = next;
                    pending.Enqueue(Task.Run(() => Load(idx, number, cts.Token), cts.Token));
                    next++;
                }
                var task = pending.Dequeue();
                Batch batch;
                try { batch = task.GetAwaiter().GetResult(); }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { yield break; }
                if (batch.Count > 0) yield return batch;
            }
        }
        finally
        {
            cts.Cancel();
            foreach (var t in pending) try { t.Wait(); } catch (AggregateException) { } catch (OperationCanceledException) { }
        }
    }

    /// <summary>False for a defect image that has no mask file (its all-zero mask says nothing).</summary>
    private static bool MaskKnown(Sample sample) => sample.MaskPath is not null || !sample.IsFolderAnomalous;

    private Batch Load(int[] idx, int number, CancellationToken ct)
    {
        int s = _o.ImageSize, plane = s * s;
        // Without pixels the masks still load (a test replayed from kept features); their size was checked against the
        // decoded image when the features were taken.
        var batchSamples = idx.Select(i => _samples[i]).ToList();
        bool pixels = _o.PixelsNotNeeded is not { } notNeeded || !notNeeded(batchSamples);
        if (!pixels && !_o.LoadMasks)
            return new Batch([], null, [.. batchSamples.Select(MaskKnown)], batchSamples, number);
        var images = pixels ? new float[idx.Length * 3 * plane] : [];
        var masks = _o.LoadMasks ? new byte[idx.Length * plane] : null;
        var known = new bool[idx.Length];
        var ok = new bool[idx.Length];
        var errors = new MambaADException?[idx.Length];
        var po = new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = _o.Workers > 0 ? _o.Workers : Environment.ProcessorCount };
        Parallel.For(0, idx.Length, po, i =>
        {
            var sample = batchSamples[i];
            try
            {
                var img = pixels ? ImageDecoder.DecodeRgb(sample.ImagePath) : null;
                if (img is not null) Preprocess.Image(img, s, _norm, images.AsSpan(i * 3 * plane, 3 * plane));
                known[i] = MaskKnown(sample);
                if (masks is not null && sample.MaskPath is not null)
                {
                    var m = img is null ? Preprocess.Mask(sample.MaskPath, s) : Preprocess.Mask(sample.MaskPath, sample.ImagePath, img.Width, img.Height, s);
                    m.CopyTo(masks.AsSpan(i * plane, plane));
                    if (sample.IsFolderAnomalous && Array.IndexOf(m, (byte)1) < 0) _vanished.TryAdd(sample.ImagePath, true);
                }
                ok[i] = true;
            }
            catch (MambaADException e) { errors[i] = e; }
        });
        // Errors surface in batch order, one line each (not wrapped by Parallel.For), naming the remedy.
        foreach (var e in errors)
        {
            if (e is null) continue;
            // Unless the error names its own setting (e.g. the image pixel limit), --skip-bad is the remedy to name.
            if (!_o.SkipBad) throw e.Setting is null ? new MambaADException(e.Message, nameof(LoaderOptions.SkipBad)) : e;
            lock (_warnings) _warnings.Add(e.Message);
        }
        if (ok.All(x => x)) return new Batch(images, masks, known, batchSamples, number);
        // Compact the batch: leave out the files that failed.
        var keep = Enumerable.Range(0, idx.Length).Where(i => ok[i]).ToArray();
        var img2 = pixels ? new float[keep.Length * 3 * plane] : [];
        var mask2 = masks is null ? null : new byte[keep.Length * plane];
        for (int k = 0; k < keep.Length; k++)
        {
            if (pixels) images.AsSpan(keep[k] * 3 * plane, 3 * plane).CopyTo(img2.AsSpan(k * 3 * plane));
            masks?.AsSpan(keep[k] * plane, plane).CopyTo(mask2.AsSpan(k * plane));
        }
        return new Batch(img2, mask2, keep.Select(i => known[i]).ToArray(), keep.Select(i => batchSamples[i]).ToList(), number);
    }
}
