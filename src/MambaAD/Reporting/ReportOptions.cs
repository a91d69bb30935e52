using MambaAD.Checkpoints;


namespace MambaAD.Reporting;

/// <summary>What an HTML test report shows besides the test outcome itself.</summary>
/// <param name="Title">The page title.</param>
/// <param name="Thresholds">
/// Decision thresholds (usually the checkpoint's, from <c>mambaad calibrate</c>). Without an image threshold each class
/// uses the threshold that maximises its image F1, and the report says so. Without a pixel threshold the predicted
/// masks use the image threshold (the image score is the map's maximum, so the two agree on which images have a mask).
/// </param>
/// <param name="Metadata">Lines shown under the title (checkpoint, dataset, date, …), in order.</param>
/// <param name="GalleryPerClass">Gallery rows per class, worst mistakes first; 0 shows every image.</param>
/// <param name="ThumbnailSize">Side of the gallery pictures in pixels (JPEG for photos, PNG for masks).</param>
public sealed record ReportOptions(
    string Title = "MambaAD test report",
    Thresholds? Thresholds = null,
    IReadOnlyList<KeyValuePair<string, string>>? Metadata = null,
    int GalleryPerClass = 24,
    int ThumbnailSize = 128);
