namespace MambaAD.Checkpoints;

/// <summary>Decision thresholds for prediction, chosen by <c>mambaad calibrate</c>.</summary>
/// <param name="Image">Image score above which an image is anomalous.</param>
/// <param name="Pixel">Map value above which a pixel is anomalous (binary masks).</param>
/// <param name="Method">How they were chosen, in words (e.g. "F1-max on 120 test images").</param>
public sealed record Thresholds(double? Image, double? Pixel, string Method);
