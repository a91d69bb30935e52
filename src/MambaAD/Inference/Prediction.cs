namespace MambaAD.Inference;

/// <summary>One image's prediction.</summary>
/// <param name="Score">The image anomaly score (max of the smoothed map, spec §12).</param>
/// <param name="Map">The smoothed anomaly map at the model size, row-major (<paramref name="MapSize"/>²).</param>
/// <param name="MapSize">The map side (the model's image size).</param>
/// <param name="IsAnomalous">Score above the image threshold; null when the checkpoint has no threshold.</param>
/// <param name="Width">The input image's width.</param>
/// <param name="Height">The input image's height.</param>
public sealed record Prediction(double Score, float[] Map, int MapSize, bool? IsAnomalous, int Width, int Height);
