using System.Collections.Concurrent;
using MambaAD.Data;
using MambaAD.Encoders;
using static TorchSharp.torch;

namespace MambaAD.Training;

/// <summary>
/// The frozen encoder's features [F1, F2, F3] of the training images, kept in memory from their first epoch on, so
/// that later epochs skip the encoder and the decoding of the images. The encoder is frozen and always in eval mode
/// (spec §2) and training has no augmentation (§13), so an image's features are the same in every epoch; an image's
/// features do not depend on the other images of its batch either (same batch size, bit for bit), so a run with the
/// cache trains the same weights as one without it, and a resumed run (whose cache starts empty) the same as an
/// uninterrupted one.
/// </summary>
/// <remarks>
/// All or nothing: the cache is used only when the features of every training image fit its budget, so its memory is
/// known when the run starts (a partial cache would rarely hold all 16 images of a shuffled batch, and a batch runs
/// the encoder unless it holds all of them). It lives in this process only: nothing is written, so a kill loses
/// nothing but the time to fill it again.
/// </remarks>
internal sealed class EncoderFeatureCache : IDisposable
{
    private readonly ConcurrentDictionary<string, Tensor[]> _features = new(StringComparer.Ordinal);

    private EncoderFeatureCache() { }

    /// <summary>Bytes of float32 features per image: Σ C_s · (S / stride_s)² over the three stages.</summary>
    public static long BytesPerImage(EncoderDescriptor encoder, int imageSize) =>
        4L * encoder.Channels.Zip(encoder.Strides, (c, s) => (long)c * ((imageSize + s - 1) / s) * ((imageSize + s - 1) / s)).Sum();

    /// <summary>The budget when none is given: a third of the memory available to this process (a container's limit included).</summary>
    public static long DefaultBudgetBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 3;

    /// <summary>
    /// A cache for <paramref name="images"/> training images when their features fit <paramref name="budgetGb"/> (null:
    /// <see cref="DefaultBudgetBytes"/>; 0: off), else null; <paramref name="decision"/> says which, and why, in one line
    /// (null when the cache was turned off).
    /// </summary>
    public static EncoderFeatureCache? For(int images, EncoderDescriptor encoder, int imageSize, double? budgetGb, out string? decision)
    {
        decision = null;
        if (budgetGb is 0) return null;
        long need = images * BytesPerImage(encoder, imageSize);
        long budget = budgetGb is { } gb ? (long)(gb * (1L << 30)) : DefaultBudgetBytes;
        string sizes = $"{Gb(need)} for {images} training images; budget {Gb(budget)}{(budgetGb is null ? ", a third of the memory" : "")}";
        if (need > budget)
        {
            decision = $"encoder features not kept between epochs ({sizes}): every epoch runs the encoder; --feature-cache GB raises the budget";
            return null;
        }
        decision = $"encoder features kept in memory from the first epoch on ({sizes}): later epochs skip the encoder and the image decoding";
        return new EncoderFeatureCache();
    }

    private static string Gb(long bytes) => $"{bytes / (double)(1L << 30):F2} GB";

    /// <summary>Images whose features are held.</summary>
    public int Count => _features.Count;

    /// <summary>Whether the features of every sample are held (safe to call from the loader's threads).</summary>
    public bool HoldsAll(IReadOnlyList<Sample> samples)
    {
        foreach (var s in samples)
            if (!_features.ContainsKey(s.ImagePath)) return false;
        return true;
    }

    /// <summary>The batch's features [F1, F2, F3], in sample order, on <paramref name="device"/>, in the caller's dispose scope.</summary>
    /// <exception cref="InvalidOperationException">A sample whose features are not held (check <see cref="HoldsAll"/>).</exception>
    public Tensor[] Get(IReadOnlyList<Sample> samples, Device device)
    {
        var held = samples.Select(s => _features.TryGetValue(s.ImagePath, out var f) ? f
            : throw new InvalidOperationException($"no cached features for {s.ImagePath}")).ToList();
        // cat keeps the encoder's memory format, so the bottleneck's convolutions run the same kernels as on fresh features.
        return Enumerable.Range(0, held[0].Length).Select(stage => cat(held.Select(f => f[stage]).ToList(), 0).to(device)).ToArray();
    }

    /// <summary>Keeps the features of the samples not held yet (<paramref name="features"/>: the encoder's output for the batch).</summary>
    public void Add(IReadOnlyList<Sample> samples, Tensor[] features)
    {
        for (int i = 0; i < samples.Count; i++)
        {
            if (_features.ContainsKey(samples[i].ImagePath)) continue;
            var own = features.Select(f => f.narrow(0, i, 1).clone().cpu().DetachFromDisposeScope()).ToArray();
            if (!_features.TryAdd(samples[i].ImagePath, own))
                foreach (var t in own) t.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var f in _features.Values)
            foreach (var t in f) t.Dispose();
        _features.Clear();
    }
}
