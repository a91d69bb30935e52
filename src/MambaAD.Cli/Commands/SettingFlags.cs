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
        ["MaxImagePixels"] = "--max-image-pixels", ["SaveMapsDir"] = "--save-maps", ["JsonPath"] = "--json", ["CsvPath"] = "--csv",
        ["ReportPath"] = "--report",
        ["Shard"] = "--shard", ["GalleryPerClass"] = "--report-gallery", ["FeatureCacheGb"] = "--feature-cache",
    };

    /// <summary>Settings that do not cause an error but avoid it: the error line ends with the option that would have.</summary>
    internal static readonly IReadOnlyDictionary<string, string> Remedies = new Dictionary<string, string>
    {
        ["SkipBad"] = "add --skip-bad to leave such files out (listed as warnings) and go on",
    };

    /// <summary>The error line: the option first when the error names a setting, the remedy last when it names one.</summary>
    public static string Describe(MambaADException e) =>
        e.Setting is { } s && Flags.TryGetValue(s, out var flag) ? $"{flag}: {e.Message}"
        : e.Setting is { } r && Remedies.TryGetValue(r, out var remedy) ? $"{e.Message}; {remedy}"
        : e.Message;
}
