namespace MambaAD.Cli.Commands;

/// <summary>
/// The command-line option for each library setting an error can name (<see cref="MambaADException.Setting"/>): the
/// library says what is wrong, the CLI says which option fixes it.
/// </summary>
internal static class SettingFlags
{
    internal static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["Backbone"] = "--backbone", ["ImageSize"] = "--image-size", ["Scan"] = "--scan", ["Directions"] = "--directions",
        ["Depths"] = "--depths", ["Checkpoint"] = "--checkpoint", ["Layout"] = "--dataset", ["Classes"] = "--classes",
        ["Epochs"] = "--epochs", ["Iterations"] = "--iterations", ["BatchSize"] = "--batch", ["LearningRate"] = "--lr",
        ["TestEvery"] = "--test-every", ["OutDir"] = "--out", ["RunDir"] = "--resume", ["NormalQuantile"] = "--normal-quantile",
    };

    /// <summary>The error line: the option first when the error names a setting.</summary>
    public static string Describe(MambaADException e) =>
        e.Setting is { } s && Flags.TryGetValue(s, out var flag) ? $"{flag}: {e.Message}" : e.Message;
}
