namespace MambaAD.Demo;

/// <summary>What <see cref="SyntheticDataset.Generate"/> writes.</summary>
/// <param name="Seed">Master seed: the same seed and options give byte-identical files, another seed other images.</param>
/// <param name="ImageSize">Side of the square images in pixels (64 to 2048). Defect sizes scale with it.</param>
/// <param name="TrainPerClass">Normal training images per class (<c>&lt;class&gt;/train/good</c>), at least 1.</param>
/// <param name="TestGoodPerClass">Normal test images per class (<c>&lt;class&gt;/test/good</c>).</param>
/// <param name="TestDefectPerType">Test images per defect type of each class (<c>&lt;class&gt;/test/&lt;defect&gt;</c>), each with a mask.</param>
/// <param name="Classes">Only these classes (names from <see cref="SyntheticDataset.ClassNames"/>), in this order; null for all.</param>
public sealed record SyntheticDatasetOptions(
    int Seed = 42,
    int ImageSize = 256,
    int TrainPerClass = 60,
    int TestGoodPerClass = 10,
    int TestDefectPerType = 5,
    IReadOnlyList<string>? Classes = null);
