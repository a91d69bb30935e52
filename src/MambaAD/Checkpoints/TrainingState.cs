
namespace MambaAD.Checkpoints;

/// <summary>Where a run stands: enough to resume it exactly.</summary>
/// <param name="Kind">The latest state, or the best at a test so far.</param>
/// <param name="Epoch">Completed epochs (1-based count).</param>
/// <param name="BatchInEpoch">Batches already done in the epoch after <paramref name="Epoch"/> (non-zero after an interrupt).</param>
/// <param name="Iteration">Optimizer steps done.</param>
/// <param name="TotalIterations">Optimizer steps planned.</param>
/// <param name="Loss">The mean training loss of the last epoch (or partial epoch).</param>
/// <param name="MeanMad">The mean mAD of the latest test, ×100.</param>
/// <param name="Options">The recipe.</param>
/// <param name="DataRoot">The training data.</param>
/// <param name="Layout">Its layout.</param>
public sealed record TrainingState(CheckpointKind Kind, int Epoch, int BatchInEpoch, long Iteration, long TotalIterations, double? Loss,
    double? MeanMad, TrainingOptions Options, string DataRoot, string? Layout);
