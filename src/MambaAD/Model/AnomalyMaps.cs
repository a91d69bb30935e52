namespace MambaAD.Model;

/// <summary>
/// The test-time output for a batch (spec §12): smoothed anomaly maps and image scores, as arrays ready for metrics,
/// files and answers.
/// </summary>
/// <param name="Maps">Count·Height·Width float32, image after image, row-major.</param>
/// <param name="Scores">Per image, the max of its smoothed map.</param>
/// <param name="Height">Map height (the model's image size).</param>
/// <param name="Width">Map width.</param>
internal sealed record AnomalyMaps(float[] Maps, float[] Scores, int Height, int Width)
{
    /// <summary>Images in the batch.</summary>
    public int Count => Scores.Length;

    /// <summary>The map of image <paramref name="i"/>, as a copy of its own.</summary>
    public float[] Map(int i) => Maps.AsSpan(i * Height * Width, Height * Width).ToArray();
}
