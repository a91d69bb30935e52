using System.Text.Json;
using System.Text.Json.Serialization;
using MambaAD.Encoders;
using MambaAD.Model;

namespace MambaAD.Training;

/// <summary>Decision thresholds for prediction, chosen by <c>mambaad calibrate</c>.</summary>
/// <param name="Image">Image score above which an image is anomalous.</param>
/// <param name="Pixel">Map value above which a pixel is anomalous (binary masks).</param>
/// <param name="Method">How they were chosen, in words (e.g. "F1-max on 120 test images").</param>
public sealed record Thresholds(double? Image, double? Pixel, string Method);

/// <summary>Where a run stands: enough to resume it exactly.</summary>
/// <param name="Kind">"last" (the latest state) or "best" (highest mean mAD at a test so far).</param>
/// <param name="Epoch">Completed epochs (1-based count).</param>
/// <param name="BatchInEpoch">Batches already done in the epoch after <paramref name="Epoch"/> (non-zero after an interrupt).</param>
/// <param name="Iteration">Optimizer steps done.</param>
/// <param name="TotalIterations">Optimizer steps planned.</param>
/// <param name="Loss">The mean training loss of the last epoch (or partial epoch).</param>
/// <param name="MeanMad">The mean mAD of the latest test, ×100.</param>
/// <param name="Options">The recipe.</param>
/// <param name="DataRoot">The training data.</param>
/// <param name="Layout">Its layout.</param>
public sealed record TrainingState(string Kind, int Epoch, int BatchInEpoch, long Iteration, long TotalIterations, double? Loss,
    double? MeanMad, TrainingOptions Options, string DataRoot, string? Layout);

/// <summary>
/// <c>model.json</c>, written beside <c>model.pth</c>: everything needed to rebuild and use the model (spec §4
/// configuration, the encoder's weight source and input normalisation, class names, thresholds) and the training
/// state. <c>model.pth</c> alone is the official state_dict, loadable by the official Python code.
/// </summary>
public sealed record CheckpointInfo(string Format, MambaADConfig Config, string EncoderWeights, InputNormalization Normalization,
    IReadOnlyList<string> Classes, Thresholds? Thresholds, TrainingState? Training, string CreatedUtc)
{
    public const string CurrentFormat = "mambaad-dotnet/1";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static CheckpointInfo FromJson(string json, string origin)
    {
        try
        {
            var info = JsonSerializer.Deserialize<CheckpointInfo>(json, Json) ?? throw new JsonException("empty");
            if (info.Format != CurrentFormat)
                throw new MambaADException($"{origin} has format '{info.Format}', this version reads '{CurrentFormat}'");
            return info;
        }
        catch (JsonException e)
        {
            throw new MambaADException($"{origin} is not a valid model.json ({e.Message.Split('\n')[0]}); re-save the checkpoint or remove the file to load model.pth as an official checkpoint", e);
        }
    }
}
