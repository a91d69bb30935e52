using MambaAD.Checkpoints;

using MambaAD.Data;
using MambaAD.Model;

namespace MambaAD.Training;

/// <summary>What to train: data, output folder, model, encoder weights and recipe; or a run to resume.</summary>
/// <param name="DataRoot">Dataset root (any layout <see cref="Dataset.Open"/> reads).</param>
/// <param name="OutDir">The run folder: <c>last/</c>, <c>best/</c> and <c>metrics.jsonl</c> go there.</param>
/// <param name="Config">The model configuration.</param>
/// <param name="EncoderWeights">"embedded" (the packaged ImageNet ResNet18) or a .pth/.safetensors file.</param>
/// <param name="Options">The recipe.</param>
/// <param name="Dataset">Layout and class selection.</param>
public sealed record TrainRequest(string DataRoot, string OutDir, MambaADConfig Config, string EncoderWeights,
    TrainingOptions Options, DatasetOptions? Dataset = null);
