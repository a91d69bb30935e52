namespace MambaAD.Data;

/// <summary>One batch of preprocessed images (and masks).</summary>
/// <param name="Images">Count × 3 × S × S float32, normalised, ready for a tensor of shape (Count, 3, S, S).</param>
/// <param name="Masks">Count × S × S in {0, 1} when masks were requested, else null. All zero for normal images
/// and for defect images without a mask (see <paramref name="MaskKnown"/>).</param>
/// <param name="MaskKnown">Per sample: false for a defect image that has no mask file.</param>
/// <param name="Samples">The samples, in batch order.</param>
internal sealed record Batch(float[] Images, byte[]? Masks, bool[] MaskKnown, IReadOnlyList<Sample> Samples)
{
    /// <summary>Images in this batch.</summary>
    public int Count => Samples.Count;
}
