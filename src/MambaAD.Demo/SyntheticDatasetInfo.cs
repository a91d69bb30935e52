namespace MambaAD.Demo;

/// <summary>What a generated (or reused) synthetic dataset holds.</summary>
/// <param name="Root">Absolute path of the data root (MVTec AD layout).</param>
/// <param name="ClassNames">The generated classes, in generation order.</param>
/// <param name="DefectTypes">The defect types (test folder names besides <c>good</c>) of each class.</param>
/// <param name="ImageSize">Side of the square images in pixels.</param>
/// <param name="TrainCount">Normal training images over all classes.</param>
/// <param name="TestGoodCount">Normal test images over all classes.</param>
/// <param name="TestDefectCount">Defective test images (each with a mask) over all classes.</param>
/// <param name="Reused">True when a complete dataset with the same options was already there and nothing was written.</param>
public sealed record SyntheticDatasetInfo(
    string Root,
    IReadOnlyList<string> ClassNames,
    IReadOnlyDictionary<string, IReadOnlyList<string>> DefectTypes,
    int ImageSize,
    int TrainCount,
    int TestGoodCount,
    int TestDefectCount,
    bool Reused)
{
    /// <summary>All test images (normal and defective).</summary>
    public int TestCount => TestGoodCount + TestDefectCount;
}
