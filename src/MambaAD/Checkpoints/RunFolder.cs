namespace MambaAD.Checkpoints;

/// <summary>
/// The layout of a training run's folder: <c>last/</c> and <c>best/</c> checkpoints and the <c>metrics.jsonl</c> log.
/// The names are fixed here once, for the trainer, the checkpoint resolver and anything that reads a run.
/// </summary>
internal static class RunFolder
{
    /// <summary>One line of JSON per epoch and per test.</summary>
    public const string MetricsFile = "metrics.jsonl";

    /// <summary>The folder name of a checkpoint kind: "last" or "best".</summary>
    public static string Name(CheckpointKind kind) => kind == CheckpointKind.Best ? "best" : "last";

    /// <summary>The folder of <paramref name="kind"/> under <paramref name="runDir"/>.</summary>
    public static string Of(string runDir, CheckpointKind kind) => Path.Combine(runDir, Name(kind));
}
