namespace MambaAD.Data;

/// <summary>One batch of preprocessed images (and masks).</summary>
/// <param name="Images">Count × 3 × S × S float32, normalised, ready for a tensor of shape (Count, 3, S, S); empty when
/// the loader was told the pixels are not needed (<see cref="LoaderOptions.PixelsNotNeeded"/>).</param>
/// <param name="Masks">Count × S × S in {0, 1} when masks were requested, else null. All zero for normal images
/// and for defect images without a mask (see <paramref name="MaskKnown"/>).</param>
/// <param name="MaskKnown">Per sample: false for a defect image that has no mask file.</param>
/// <param name="Samples">The samples, in batch order.</param>
/// <param name="Index">The batch's position in its epoch (batches left empty by skipped files are not yielded, so it can jump).</param>
internal sealed record Batch(float[] Images, byte[]? Masks, bool[] MaskKnown, IReadOnlyList<Sample> Samples, int Index)
{
    /// <summary>Images in this batch.</summary>
    public int Count => Samples.Count;

    /// <summary>False when the images were not decoded (<see cref="LoaderOptions.PixelsNotNeeded"/>).</summary>
    public bool HasPixels => Images.Length > 0;
}
