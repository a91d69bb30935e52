namespace MambaAD.Data;

/// <summary>One image of a dataset split.</summary>
/// <param name="ImagePath">Absolute path of the image file.</param>
/// <param name="ClassName">The class (category) it belongs to.</param>
/// <param name="DefectType">"good" for normal images, otherwise the defect folder/type name.</param>
/// <param name="MaskPath">The ground-truth mask, or null (normal image, or a defect image of a class without masks).</param>
/// <param name="IsFolderAnomalous">Whether the dataset calls it anomalous. The label used by the metrics is max(resized mask) (§12.6).</param>
public sealed record Sample(string ImagePath, string ClassName, string DefectType, string? MaskPath, bool IsFolderAnomalous)
{
    /// <summary>The file name without extension: maps are saved as <c>&lt;class&gt;/&lt;defect&gt;/&lt;stem&gt;.npy</c>.</summary>
    public string Stem => Path.GetFileNameWithoutExtension(ImagePath);
}
