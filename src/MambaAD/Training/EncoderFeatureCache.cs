using System.Collections.Concurrent;
using MambaAD.Data;
using MambaAD.Encoders;
using MambaAD.Util;
using static TorchSharp.torch;

namespace MambaAD.Training;

/// <summary>
/// The frozen encoder's features [F1, F2, F3] of the training images, kept from their first epoch on, so that later
/// epochs skip the encoder and the decoding of the images (and of the test images, kept from the first test on when
/// they fit in memory too: <see cref="ForTests"/>). The encoder is frozen and always in eval mode (spec §2) and
/// training has no augmentation (§13), so an image's features are the same in every epoch; an image's features do not
/// depend on the other images of its batch either (same batch size, bit for bit), so a run with the cache trains the
/// same weights as one without it, and a resumed run (whose cache starts empty) the same as an uninterrupted one.
/// </summary>
/// <remarks>
/// All or nothing: the cache is used only when the features of every training image fit, so what it takes is known
/// when the run starts (a partial cache would rarely hold all 16 images of a shuffled batch, and a batch runs the
/// encoder unless it holds all of them). Each image has a slot of the same size in a store allocated whole at the start:
/// one block of memory (<see cref="FeatureMemory"/>) when they fit the memory budget, else a <see cref="FeatureFile"/>
/// in the run folder when its disk has room: a file with no name, gone when the process is, read through the page
/// cache. Slots hold the features in the encoder's memory format, and a batch is read back in it. Either way a kill
/// loses nothing but the time to fill it again. A write that fails (a file system that did not reserve the file's
/// blocks, a file-size limit) stops the cache taking features; the run goes on.
/// </remarks>
internal sealed unsafe class EncoderFeatureCache : IDisposable
{
    private readonly ConcurrentDictionary<string, int> _slots = new(StringComparer.Ordinal);   // image → slot, once whole
    private readonly FeatureSlots _store;         // one slot per image: memory or a file
    private Stage[]? _stages;                     // the encoder's output layout, from the first batch kept
    private int _next;                            // the next free slot
    private bool _stopped;                        // a write failed: no more features are taken

    /// <summary>One stage's features per image: C·H·W floats at <paramref name="Offset"/> bytes into a slot, stored in the
    /// order of the encoder's memory format (channels-last features as (H, W, C)).</summary>
    private sealed record Stage(long[] Shape, bool ChannelsLast, long Offset, long Floats);

    private EncoderFeatureCache(FeatureSlots store) => _store = store;

    /// <summary>A cache over <paramref name="file"/> (tests: a file where a real fault happens).</summary>
    internal static EncoderFeatureCache OnFile(FeatureFile file) => new(file);

    private static EncoderFeatureCache InMemory(int images, long perImage) => new(new FeatureMemory(images, perImage));

    /// <summary>Bytes of float32 features per image: Σ C_s · (S / stride_s)² over the three stages.</summary>
    public static long BytesPerImage(EncoderDescriptor encoder, int imageSize) =>
        4L * encoder.Channels.Zip(encoder.Strides, (c, s) => (long)c * ((imageSize + s - 1) / s) * ((imageSize + s - 1) / s)).Sum();

    /// <summary>The memory budget when none is given: a third of the memory available to this process (a container's limit included).</summary>
    public static long DefaultBudgetBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 3;

    /// <summary>The memory budget in bytes: <paramref name="budgetGb"/> GB, or <see cref="DefaultBudgetBytes"/> when null.</summary>
    private static long BudgetBytes(double? budgetGb) => budgetGb is { } gb ? (long)(gb * (1L << 30)) : DefaultBudgetBytes;

    /// <summary>
    /// A cache for <paramref name="images"/> training images: in memory when their features fit
    /// <paramref name="budgetGb"/> (null: <see cref="DefaultBudgetBytes"/>; 0: no cache at all), else in a file in
    /// <paramref name="fileDirectory"/> (null: none) when its disk has room, else null. <paramref name="decision"/>
    /// says which, and why, in one line (null when the cache was turned off).
    /// </summary>
    public static EncoderFeatureCache? For(int images, EncoderDescriptor encoder, int imageSize, double? budgetGb,
        string? fileDirectory, out string? decision)
    {
        decision = null;
        if (budgetGb is 0) return null;
        long perImage = BytesPerImage(encoder, imageSize), need = images * perImage;
        long budget = BudgetBytes(budgetGb);
        string sizes = $"{Gb(need)} for {images} training images; memory budget {Gb(budget)}{(budgetGb is null ? ", a third of the memory" : "")}";
        const string skips = "later epochs skip the encoder and the image decoding";
        if (need <= budget)
        {
            decision = $"encoder features kept in memory from the first epoch on ({sizes}): {skips}";
            return InMemory(images, perImage);
        }
        string? whyNot = "no run folder";
        if (fileDirectory is not null && FeatureFile.Create(fileDirectory, images, perImage, out whyNot) is { } file)
        {
            decision = $"encoder features kept in a temporary file in {fileDirectory} from the first epoch on ({sizes}; the file " +
                       $"goes when the run ends, however it ends): {skips}";
            return OnFile(file);
        }
        decision = $"encoder features not kept between epochs ({sizes}; not on disk either: {whyNot}): every epoch runs the " +
                   "encoder; --feature-cache GB raises the memory budget";
        return null;
    }

    /// <summary>
    /// A cache for the <paramref name="images"/> test images beside <paramref name="training"/>'s, so that the tests after
    /// the first skip the encoder and the image decoding: in memory only, and only when the training images' features
    /// are in memory too and both fit the budget (the training cache comes first: it serves every step). Null when
    /// not; <paramref name="decision"/> says which (null when there are no test images or no training cache at all).
    /// </summary>
    public static EncoderFeatureCache? ForTests(int images, EncoderFeatureCache? training, EncoderDescriptor encoder, int imageSize,
        double? budgetGb, out string? decision)
    {
        decision = null;
        if (images == 0 || training is null) return null;
        long perImage = BytesPerImage(encoder, imageSize), need = images * perImage, trainNeed = training._store.Slots * perImage;
        long budget = BudgetBytes(budgetGb);
        if (!training.OnDisk && trainNeed + need <= budget)
        {
            decision = $"the test images' encoder features kept in memory too ({Gb(need)} for {images} test images): the tests " +
                       "after the first skip the encoder and the image decoding";
            return InMemory(images, perImage);
        }
        decision = $"the test images' encoder features not kept ({Gb(need)} for {images} test images beside the training " +
                   $"images' {Gb(trainNeed)}{(training.OnDisk ? " in a file" : "")}; memory budget {Gb(budget)}): every test runs the encoder";
        return null;
    }

    internal static string Gb(long bytes) => $"{bytes / (double)(1L << 30):F2} GB";

    /// <summary>Images whose features are held.</summary>
    public int Count => _slots.Count;

    /// <summary>Whether the features are in a file rather than in memory.</summary>
    public bool OnDisk => _store is FeatureFile;

    /// <summary>Whether the features of every sample are held (safe to call from the loader's threads).</summary>
    public bool HoldsAll(IReadOnlyList<Sample> samples)
    {
        foreach (var s in samples)
            if (!_slots.ContainsKey(s.ImagePath)) return false;
        return true;
    }

    /// <summary>The batch's features [F1, F2, F3], in sample order, on <paramref name="device"/>, in the caller's dispose scope.</summary>
    /// <exception cref="InvalidOperationException">A sample whose features are not held (check <see cref="HoldsAll"/>).</exception>
    public Tensor[] Get(IReadOnlyList<Sample> samples, Device device)
    {
        var slots = samples.Select(s => _slots.TryGetValue(s.ImagePath, out int slot) ? slot
            : throw new InvalidOperationException($"no cached features for {s.ImagePath}")).ToList();
        // The features come back in the encoder's memory format, so the bottleneck's convolutions run the same kernels
        // as on fresh features.
        return _stages!.Select(stage =>
        {
            var stored = empty(StoredShape(stage, slots.Count));
            for (int i = 0; i < slots.Count; i++)
                _store.Read(slots[i], stage.Offset, new Span<byte>(TensorMemory.Floats(stored) + i * stage.Floats, checked((int)(stage.Floats * 4))));
            return (stage.ChannelsLast ? stored.permute(0, 3, 1, 2) : stored).to(device);
        }).ToArray();
    }

    /// <summary>
    /// Keeps the features of the samples not held yet (<paramref name="features"/>: the encoder's output for the batch),
    /// from the training thread. A failed write stops the cache taking more and returns why, once.
    /// </summary>
    public string? Add(IReadOnlyList<Sample> samples, Tensor[] features)
    {
        if (_stopped) return null;
        using var scope = NewDisposeScope();
        _stages ??= Layout(features);
        var stored = features.Zip(_stages, (f, stage) => Stored(f.cpu(), stage)).ToArray();
        for (int i = 0; i < samples.Count; i++)
        {
            if (_slots.ContainsKey(samples[i].ImagePath) || _next == _store.Slots) continue;
            int slot = _next;
            try
            {
                for (int s = 0; s < _stages.Length; s++)
                    _store.Write(slot, _stages[s].Offset, new ReadOnlySpan<byte>(TensorMemory.Floats(stored[s]) + i * _stages[s].Floats, checked((int)(_stages[s].Floats * 4))));
            }
            catch (IOException e) when (_store is FeatureFile file)
            {
                _stopped = true;
                return $"the encoder-feature file in {System.IO.Path.GetDirectoryName(file.Path)} could not take more ({e.Message}): " +
                       $"{Count} images' features kept, the others run the encoder in every epoch";
            }
            _next++;
            _slots[samples[i].ImagePath] = slot;   // published once whole: the loader's threads read _slots
        }
        return null;
    }

    /// <summary>The stages' shapes and memory formats, and their offsets in a slot.</summary>
    private static Stage[] Layout(Tensor[] features)
    {
        long offset = 0;
        return features.Select(f =>
        {
            var stage = new Stage(f.shape[1..], TensorMemory.IsChannelsLast(f), offset, f.shape[1..].Aggregate(1L, (a, b) => a * b));
            offset += stage.Floats * 4;
            return stage;
        }).ToArray();
    }

    /// <summary>The features in the order they are stored: (B, H, W, C) for channels-last, else (B, C, H, W), contiguous.</summary>
    private static Tensor Stored(Tensor f, Stage stage) => stage.ChannelsLast ? f.permute(0, 2, 3, 1).contiguous() : f.contiguous();

    private static long[] StoredShape(Stage stage, int count) =>
        stage.ChannelsLast ? [count, stage.Shape[1], stage.Shape[2], stage.Shape[0]] : [count, .. stage.Shape];

    public void Dispose() => _store.Dispose();
}
