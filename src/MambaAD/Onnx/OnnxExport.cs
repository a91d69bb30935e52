using Google.Protobuf;
using MambaAD.Checkpoints;
using MambaAD.IO;
using MambaAD.Model;
using Onnx;

namespace MambaAD.Onnx;

/// <summary>Options of <see cref="OnnxExport.Export(string, string, OnnxExportOptions?, MambaADConfig?)"/>.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The oldest opset the exporter writes (LayerNormalization came in 17).</summary>
    public const int MinOpset = 17;

    /// <summary>The newest opset the exporter writes (tested with ONNX Runtime 1.31.1).</summary>
    public const int MaxOpset = 23;

    /// <summary>A fixed batch, or null for a dynamic batch dimension ("batch").</summary>
    public int? Batch { get; init; }

    /// <summary>The default-domain opset (17 by default: the newest the ONNX checker of Debian's python3-onnx knows).</summary>
    public int Opset { get; init; } = MinOpset;

    /// <summary>How the selective scan's recurrence is written (see <see cref="Onnx.ScanFormulation"/>); sequential measured fastest here.</summary>
    internal ScanFormulation ScanFormulation { get; init; } = ScanFormulation.Sequential;

    /// <summary>Steps per chunk for <see cref="ScanFormulation.Chunked"/>; a stage whose L it does not divide (or equals) runs sequentially.</summary>
    internal int ScanChunk { get; init; } = 64;

    internal OnnxExportOptions Validate()
    {
        if (Batch is < 1) throw new MambaADException($"--batch {Batch} must be at least 1 (or use --dynamic-batch)");
        if (Opset is < MinOpset or > MaxOpset)
            throw new MambaADException($"--opset {Opset} is not supported: use {MinOpset} to {MaxOpset} (LayerNormalization needs 17; ONNX Runtime 1.31 runs up to {MaxOpset})");
        if (ScanFormulation == ScanFormulation.Chunked && ScanChunk < 1) throw new MambaADException($"scan chunk {ScanChunk} must be at least 1");
        return this;
    }
}

/// <summary>
/// Writes a MambaAD model as one standard ONNX model: normalised image (B, 3, S, S) → smoothed anomaly map (B, S, S)
/// and image score (B), with what a user needs to feed it in the model's metadata (<see cref="OnnxMetadata"/>).
/// </summary>
public static class OnnxExport
{
    /// <summary>
    /// Exports a checkpoint (ours, or an official one read with <paramref name="officialConfig"/>) to
    /// <paramref name="path"/>, atomically, with its normalisation, classes and thresholds in the metadata.
    /// </summary>
    /// <returns>The model's description, as the export records it.</returns>
    public static CheckpointInfo Export(string checkpoint, string path, OnnxExportOptions? options = null, MambaADConfig? officialConfig = null)
    {
        options = (options ?? new OnnxExportOptions()).Validate();
        using var loaded = Checkpoint.Load(checkpoint, officialConfig, "cpu");
        Export(loaded.Model, loaded.Info, path, options);
        return loaded.Info;
    }

    /// <summary>Exports a loaded model with its checkpoint information (normalisation, classes, thresholds) to <paramref name="path"/>, atomically.</summary>
    internal static void Export(MambaADModel model, CheckpointInfo info, string path, OnnxExportOptions? options = null)
    {
        var proto = Build(model, info, options ?? new OnnxExportOptions());
        AtomicFile.Write(path, proto.WriteTo);
    }

    /// <summary>The ModelProto (for tests and tools that keep it in memory).</summary>
    internal static ModelProto Build(MambaADModel model, CheckpointInfo info, OnnxExportOptions options)
    {
        options.Validate();
        if (model.training) throw new InvalidOperationException("call eval() before exporting: BatchNorm is folded with its running statistics");
        var proto = new ModelProto
        {
            ProducerName = "MambaAD for .NET",
            ProducerVersion = OnnxMetadata.ProjectVersion,
            DocString = $"MambaAD (He et al., NeurIPS 2024), {model.Config}. Input '{ModelGraph.InputName}' (batch, 3, S, S): " +
                        "the normalised image (see metadata_props). Outputs '" + ModelGraph.MapName + "' (batch, S, S): the smoothed " +
                        "anomaly map; '" + ModelGraph.ScoreName + "' (batch): its max, the image score.",
            Graph = ModelGraph.Build(model, options),
        };
        proto.IrVersion = options.Opset switch { <= 18 => 8, <= 20 => 9, <= 22 => 10, _ => 11 }; // the IR each opset came with
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        foreach (var (key, value) in OnnxMetadata.From(model.Config, info, options))
            proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return proto;
    }
}
