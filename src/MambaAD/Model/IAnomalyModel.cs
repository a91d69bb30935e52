namespace MambaAD.Model;

/// <summary>
/// A model as inference uses it: normalised images in, smoothed anomaly maps and image scores out (spec §12). The
/// TorchSharp <see cref="MambaADModel"/> is one; a model exported to ONNX and run by ONNX Runtime is another. Calls
/// are not thread-safe: callers serialise them.
/// </summary>
internal interface IAnomalyModel : IDisposable
{
    /// <summary>The square input side the model takes (and the side of its maps).</summary>
    int ImageSize { get; }

    /// <summary>Scores <paramref name="count"/> images held as (count, 3, S, S) float32, normalised for the encoder.</summary>
    AnomalyMaps Run(float[] images, int count, CancellationToken cancellationToken = default);
}
