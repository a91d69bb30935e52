using System.Text.Json;
using System.Text.Json.Serialization;
using MambaAD.Imaging;
using MambaAD.Model;

namespace MambaAD.Checkpoints;

/// <summary>
/// <c>model.json</c>, written beside <c>model.pth</c>: everything needed to rebuild and use the model (spec §4
/// configuration, the encoder's weight source and input normalisation, class names, thresholds) and the training
/// state. <c>model.pth</c> alone is the official state_dict, loadable by the official Python code.
/// </summary>
public sealed record CheckpointInfo(string Format, MambaADConfig Config, string EncoderWeights, InputNormalization Normalization,
    IReadOnlyList<string> Classes, Thresholds? Thresholds, TrainingState? Training, string CreatedUtc)
{
    /// <summary>The format this version writes and reads.</summary>
    public const string CurrentFormat = "mambaad-dotnet/1";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>model.json's text.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads model.json's text; <paramref name="origin"/> names the file in errors.</summary>
    /// <exception cref="MambaADException">Not valid JSON, or another format.</exception>
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
