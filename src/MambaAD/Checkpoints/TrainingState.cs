using System.Text.Json.Serialization;

namespace MambaAD.Checkpoints;

/// <summary>Where a run stands: enough to resume it exactly, plan included.</summary>
/// <param name="Kind">The latest state, or the best at a test so far.</param>
/// <param name="Epoch">Completed epochs (1-based count).</param>
/// <param name="BatchInEpoch">Batches already done in the epoch after <paramref name="Epoch"/> (non-zero after an interrupt).</param>
/// <param name="Iteration">Optimizer steps done.</param>
/// <param name="TotalIterations">Optimizer steps planned (a time budget shortens the plan; a resumed run keeps it).</param>
/// <param name="Loss">The mean training loss of the last epoch (or partial epoch).</param>
/// <param name="MeanMad">The mean mAD of the latest test, ×100.</param>
/// <param name="Options">The recipe.</param>
/// <param name="DataRoot">The training data.</param>
/// <param name="Layout">Its layout.</param>
/// <param name="DecayIteration">The iteration from which the learning rate is decayed (spec §13: 80 % of the plan); null in checkpoints of older versions.</param>
/// <param name="TrainingSeconds">Optimisation time spent so far (tests excluded), counted against <see cref="TrainingOptions.TimeLimit"/>.</param>
/// <param name="SkipBad">Unreadable images are left out with a warning (<see cref="Data.DatasetOptions.SkipBad"/>).</param>
public sealed record TrainingState(CheckpointKind Kind, int Epoch, int BatchInEpoch, long Iteration, long TotalIterations, double? Loss,
    double? MeanMad, TrainingOptions Options, string DataRoot, string? Layout, long? DecayIteration = null, double TrainingSeconds = 0,
    bool SkipBad = false)
{
    /// <summary>The plan is done and its final test and save happened: resuming has nothing to do.</summary>
    [JsonIgnore]
    public bool IsFinished => TotalIterations > 0 && Iteration >= TotalIterations && BatchInEpoch == 0;
}
