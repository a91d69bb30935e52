using MambaAD.Checkpoints;
using MambaAD.Model;
using MambaAD.Imaging;
using Microsoft.ML.OnnxRuntime;

namespace MambaAD.Onnx;

/// <summary>
/// An exported MambaAD model (<see cref="OnnxExport"/>) in ONNX Runtime on the CPU: normalised batch → smoothed maps
/// and image scores, and the metadata that says how to normalise. Intra-op threads default to libtorch's thread
/// count, with spinning off (ORT's spinning pool slows libtorch work in the same process). One run at a time.
/// </summary>
internal sealed class OnnxRuntimeModel : IAnomalyModel
{
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;
    private readonly object _run = new();

    private OnnxRuntimeModel(InferenceSession session, SessionOptions options, string path)
    {
        _session = session;
        _options = options;
        Path = path;
        Metadata = session.ModelMetadata.CustomMetadataMap;
        Info = OnnxMetadata.ReadInfo(Metadata, path);
        var input = session.InputMetadata.TryGetValue(ModelGraph.InputName, out var meta) ? meta
            : throw new MambaADException($"{path} has no input '{ModelGraph.InputName}': it is not a MambaAD export");
        FixedBatch = input.Dimensions[0] > 0 ? input.Dimensions[0] : null;
    }

    /// <summary>Loads <paramref name="path"/>; <paramref name="threads"/> intra-op threads (default: libtorch's count).</summary>
    public static OnnxRuntimeModel Load(string path, int? threads = null)
    {
        if (!File.Exists(path)) throw new MambaADException($"{path} does not exist: pass an .onnx file written by mambaad export");
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads ?? TorchSharp.torch.get_num_threads(),
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        try
        {
            return new OnnxRuntimeModel(new InferenceSession(path, options), options, path);
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new MambaADException($"{path} could not be loaded by ONNX Runtime ({e.Message.Split('\n')[0]}); re-export it with mambaad export", e);
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>All metadata_props (keys in <see cref="OnnxMetadata"/>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The model's description from its metadata: configuration, normalisation, classes, thresholds.</summary>
    public CheckpointInfo Info { get; }

    /// <summary>The square input side S.</summary>
    public int ImageSize => Info.Config.ImageSize;

    /// <summary>How to turn pixels into the input.</summary>
    public InputNormalization Normalization => Info.Normalization;

    public IReadOnlyList<string> Classes => Info.Classes;

    public Thresholds? Thresholds => Info.Thresholds;

    /// <summary>The batch the model was exported with, or null for a dynamic batch.</summary>
    public int? FixedBatch { get; }

    /// <summary>
    /// Runs <paramref name="count"/> images, (count, 3, S, S) normalised in <paramref name="normalisedInput"/>. Returns the
    /// smoothed maps (count·S·S) and the scores (count). A fixed-batch model runs in slices of its batch (the last one
    /// padded with zeros).
    /// </summary>
    public AnomalyMaps Run(float[] normalisedInput, int count, CancellationToken ct = default)
    {
        int s = ImageSize, plane = s * s;
        if (count < 0 || normalisedInput.Length != (long)count * 3 * plane)
            throw new ArgumentException($"expected {count}·3·{s}·{s} = {(long)count * 3 * plane} values, got {normalisedInput.Length}");
        var maps = new float[(long)count * plane];
        var scores = new float[count];
        int step = FixedBatch ?? Math.Max(count, 1);
        lock (_run)
        {
            for (int start = 0; start < count; start += step)
            {
                ct.ThrowIfCancellationRequested();
                int n = Math.Min(step, count - start), b = FixedBatch ?? n;
                var input = new float[b * 3 * plane];
                Array.Copy(normalisedInput, (long)start * 3 * plane, input, 0, (long)n * 3 * plane);
                using var runOptions = new RunOptions();
                using var cancel = ct.Register(() => runOptions.Terminate = true);
                using var value = OrtValue.CreateTensorValueFromMemory(input, [b, 3, s, s]);
                using var outputs = _session.Run(runOptions, [ModelGraph.InputName], [value], [ModelGraph.MapName, ModelGraph.ScoreName]);
                ct.ThrowIfCancellationRequested();
                outputs[0].GetTensorDataAsSpan<float>()[..(n * plane)].CopyTo(maps.AsSpan(start * plane));
                outputs[1].GetTensorDataAsSpan<float>()[..n].CopyTo(scores.AsSpan(start));
            }
        }
        return new AnomalyMaps(maps, scores, s, s);
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}
