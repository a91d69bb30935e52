using MambaAD.Imaging;

namespace MambaAD.Data;

/// <summary>Options of <see cref="BatchLoader"/> (spec §13: batch 16, shuffled every epoch, drop_last for training).</summary>
/// <param name="BatchSize">Images per batch.</param>
/// <param name="ImageSize">Square model input size (256 in the paper).</param>
/// <param name="Normalization">Per-encoder normalisation; <see cref="InputNormalization.ImageNet"/> when null.</param>
/// <param name="Shuffle">Shuffle each epoch with a permutation determined by <paramref name="Seed"/> and the epoch number.</param>
/// <param name="Seed">Shuffling seed.</param>
/// <param name="DropLast">Drop the last incomplete batch (training).</param>
/// <param name="LoadMasks">Also load ground-truth masks (test).</param>
/// <param name="Workers">Parallel decoders; 0 for the processor count.</param>
/// <param name="Prefetch">Batches decoded ahead of the consumer.</param>
/// <param name="SkipBad">Leave out unreadable files (listed in <see cref="BatchLoader.Warnings"/>) instead of failing.</param>
/// <param name="PixelsNotNeeded">Batches for which it returns true are yielded without decoding their images (their
/// <see cref="Batch.Images"/> is empty; masks still load when asked for): the consumer has what it needs of them already
/// (the trainer's encoder-feature caches).</param>
internal sealed record LoaderOptions(int BatchSize = 16, int ImageSize = 256, InputNormalization? Normalization = null,
    bool Shuffle = false, int Seed = 42, bool DropLast = false, bool LoadMasks = false, int Workers = 0, int Prefetch = 2,
    bool SkipBad = false, Func<IReadOnlyList<Sample>, bool>? PixelsNotNeeded = null);
