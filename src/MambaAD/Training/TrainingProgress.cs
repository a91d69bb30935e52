namespace MambaAD.Training;

/// <summary>A progress report from <see cref="Trainer"/>.</summary>
/// <param name="Phase">What the report is about.</param>
/// <param name="Epoch">The current epoch (1-based).</param>
/// <param name="Epochs">Planned epochs.</param>
/// <param name="Iteration">Optimizer steps done.</param>
/// <param name="Iterations">Planned steps.</param>
/// <param name="Loss">Running mean loss of the current epoch.</param>
/// <param name="ImagesPerSecond">Training throughput over the last iterations.</param>
/// <param name="Eta">Estimated time to the end of training (tests excluded).</param>
/// <param name="Message">A line for logs (test results, checkpoint paths), or null.</param>
/// <param name="StepLoss">The loss of the step just taken (train reports only).</param>
public sealed record TrainingProgress(TrainingPhase Phase, int Epoch, int Epochs, long Iteration, long Iterations, double? Loss,
    double ImagesPerSecond, TimeSpan? Eta, string? Message, double? StepLoss = null);
